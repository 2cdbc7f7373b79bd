namespace ModelRouting.Registry;

/// <summary>A LoRA adapter with a blending weight.</summary>
public sealed record AdapterRef(string Name, double Weight);

/// <summary>
/// An ordered composition of LoRA adapters with blending weights (seed <c>AdapterStack</c>).
/// Immutable: <see cref="Add"/> and <see cref="Normalize"/> return new stacks.
/// </summary>
public sealed class AdapterStack
{
    /// <summary>The empty stack.</summary>
    public static AdapterStack Empty { get; } = new([]);

    /// <summary>Creates a stack over the given adapters, in order.</summary>
    public AdapterStack(IEnumerable<AdapterRef> adapters) => Adapters = [.. adapters];

    /// <summary>Gets the adapters in application order.</summary>
    public IReadOnlyList<AdapterRef> Adapters { get; }

    /// <summary>Gets the number of adapters.</summary>
    public int Count => Adapters.Count;

    /// <summary>Gets whether the stack has no adapters.</summary>
    public bool IsEmpty => Adapters.Count == 0;

    /// <summary>Gets the sum of the weights.</summary>
    public double TotalWeight => Adapters.Sum(a => a.Weight);

    /// <summary>Returns a stack with one more adapter at the end.</summary>
    public AdapterStack Add(string name, double weight) => new([.. Adapters, new AdapterRef(name, weight)]);

    /// <summary>
    /// Returns a stack whose weights sum to 1. A total of (nearly) zero leaves the weights unchanged,
    /// as the seed does, to avoid dividing by zero.
    /// </summary>
    public AdapterStack Normalize()
    {
        var total = TotalWeight;
        if (Math.Abs(total) < 1e-9)
        {
            return this;
        }

        return new(Adapters.Select(a => a with { Weight = a.Weight / total }));
    }

    /// <summary>
    /// Checks the stack can be forwarded: at least one adapter, non-empty names, finite non-negative
    /// weights and a positive total. Returns <see langword="null"/> when valid, else what is wrong.
    /// </summary>
    public string? Validate()
    {
        if (IsEmpty)
        {
            return "an adapter stack needs at least one adapter";
        }

        for (var i = 0; i < Adapters.Count; i++)
        {
            var a = Adapters[i];
            if (string.IsNullOrWhiteSpace(a.Name))
            {
                return $"adapter [{i}] has an empty Name";
            }

            if (!double.IsFinite(a.Weight) || a.Weight < 0)
            {
                return $"adapter [{i}] '{a.Name}' has Weight {a.Weight}; weights must be finite and non-negative";
            }
        }

        return TotalWeight > 0 ? null : "the adapter weights must have a positive total";
    }
}
