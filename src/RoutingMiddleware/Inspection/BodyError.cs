namespace ModelRouting.Inspection;

/// <summary>What is wrong with a request body the gateway cannot route on.</summary>
internal enum BodyError
{
    None,
    InvalidJson,
    NotAnObject,
    ModelNotString,
    DuplicateModel,
}
