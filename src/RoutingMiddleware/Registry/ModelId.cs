namespace ModelRouting.Registry;

/// <summary>
/// A model endpoint identifier: <c>"base"</c> names a base model, <c>"base:adapter"</c> a base model
/// with a LoRA adapter applied (split at the first <c>':'</c>).
/// </summary>
public readonly record struct ModelId(string Value)
{
    /// <summary>Gets whether this id names a base model (it has no <c>':'</c>).</summary>
    public bool IsBase => !Value.Contains(':', StringComparison.Ordinal);

    /// <summary>Gets the part after the first <c>':'</c>, or <see langword="null"/> for a base id.</summary>
    public string? AdapterName
    {
        get
        {
            var i = Value.IndexOf(':', StringComparison.Ordinal);
            return i < 0 ? null : Value[(i + 1)..];
        }
    }

    /// <summary>Gets the part before the first <c>':'</c> (the whole id for a base id).</summary>
    public string BaseName
    {
        get
        {
            var i = Value.IndexOf(':', StringComparison.Ordinal);
            return i < 0 ? Value : Value[..i];
        }
    }

    /// <inheritdoc />
    public override string ToString() => Value;

    /// <summary>Converts a string to a <see cref="ModelId"/>.</summary>
    public static implicit operator ModelId(string value) => new(value);
}
