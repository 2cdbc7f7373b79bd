namespace ModelRouting.Admin;

/// <summary>The runtime state file could not be written; the change that needed it was not applied.</summary>
internal sealed class RuntimeStateNotSavedException(string path, Exception innerException)
    : IOException($"The runtime state file '{path}' could not be written: {innerException.Message}", innerException)
{
    /// <summary>Gets the state file's path.</summary>
    public string Path { get; } = path;
}
