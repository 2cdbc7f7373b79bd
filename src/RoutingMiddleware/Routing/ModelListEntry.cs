using System.Text.Json.Serialization;

namespace ModelRouting.Routing;

/// <summary>An entry of the OpenAI-compatible <c>/v1/models</c> list (SPEC §8).</summary>
public sealed record ModelListEntry(
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("created")] long Created,
    [property: JsonPropertyName("owned_by")] string OwnedBy,
    [property: JsonPropertyName("root")] string Root,
    [property: JsonPropertyName("parent")] string? Parent,
    [property: JsonPropertyName("max_model_len")] int MaxModelLen)
{
    /// <summary>Gets the object type, always <c>model</c>.</summary>
    [JsonPropertyName("object")]
    [JsonPropertyOrder(-1)]
#pragma warning disable CA1822 // an instance member so System.Text.Json serializes it
    public string ObjectType => "model";
#pragma warning restore CA1822
}
