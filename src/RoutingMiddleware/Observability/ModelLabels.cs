using System.Collections.Concurrent;
using ModelRouting.Registry;

namespace ModelRouting.Observability;

/// <summary>
/// The <c>gen_ai.request.model</c> label of a request (SPEC §15): the registry's own string for a name that
/// resolves, so no client input becomes a label unless it is a registered name, and nothing is allocated per
/// request; one fixed label for every name that does not resolve, so a client cannot create unbounded series.
/// </summary>
internal static class ModelLabels
{
    /// <summary>The label of a model name that names no endpoint or alias.</summary>
    public const string Unknown = "(unknown)";

    /// <summary>The label of a request that names no model (the default endpoint serves it) or whose body was refused.</summary>
    public const string None = "(none)";

    /// <summary>The longest label kept; longer registered names are cut.</summary>
    public const int MaxLength = 128;

    // Registered names seen that were neither the endpoint's id nor one of its configured aliases (an alias added
    // at run time): a copy, made once. Bounded by what the registry holds; cleared if it ever grows past the cap.
    private const int MaxCached = 4096;
    private static readonly ConcurrentDictionary<string, string> s_names = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> s_lookup =
        s_names.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>
    /// The label for <paramref name="name"/> (what the client sent; <paramref name="named"/> false when it sent
    /// none) given the endpoint the registry resolved it to (null when it did not resolve).
    /// </summary>
    public static string Of(ReadOnlySpan<char> name, bool named, ModelEndpoint? resolved)
    {
        if (!named)
        {
            return None;
        }

        if (resolved is null)
        {
            return Unknown;
        }

        var id = resolved.Id.Value;
        if (name.SequenceEqual(id))
        {
            return id;
        }

        var aliases = resolved.Aliases;
        for (var i = 0; i < aliases.Count; i++)
        {
            if (name.SequenceEqual(aliases[i]))
            {
                return aliases[i];
            }
        }

        var key = name.Length > MaxLength ? name[..MaxLength] : name;
        if (s_lookup.TryGetValue(key, out var cached))
        {
            return cached;
        }

        if (s_names.Count >= MaxCached)
        {
            s_names.Clear();
        }

        var label = new string(key);
        s_names.TryAdd(label, label);
        return label;
    }
}
