using ModelRouting.Inspection;
using ModelRouting.Registry;

namespace ModelRouting.Configuration;

/// <summary>
/// The rules for one endpoint entry, shared by configuration (<see cref="ModelRegistryFactory"/>) and the
/// admin API, so a runtime change is validated exactly like configuration. Registry-wide rules (duplicate
/// ids, alias collisions, one default) are checked by the caller or by <see cref="ModelRegistry"/>.
/// </summary>
internal static class ModelEndpointValidator
{
    /// <summary>
    /// Validates <paramref name="entry"/> (whose id, already trimmed, is <paramref name="id"/>) and builds the
    /// endpoint, or reports every error through <paramref name="error"/> (the field, then a message that
    /// starts with the field) and returns null.
    /// </summary>
    public static ModelEndpoint? Validate(ModelEndpointOptions entry, string? id, IReadOnlySet<string> clusterIds, Action<string, string> error)
    {
        var failed = false;
        void Fail(string field, string message)
        {
            failed = true;
            error(field, message);
        }

        if (string.IsNullOrWhiteSpace(entry.Cluster))
        {
            Fail("Cluster", "Cluster is required");
        }
        else if (!clusterIds.Contains(entry.Cluster))
        {
            Fail("Cluster", $"Cluster '{entry.Cluster}' is not a ReverseProxy cluster (known: {string.Join(", ", clusterIds.Order(StringComparer.Ordinal))})");
        }

        if (!string.IsNullOrWhiteSpace(entry.TokenEncoding) && !IsSupportedEncoding(entry.TokenEncoding))
        {
            Fail("TokenEncoding", $"TokenEncoding '{entry.TokenEncoding}' is not one of {string.Join(", ", TiktokenTokenCounter.SupportedEncodings)}");
        }

        TokenEstimationMode? mode = null;
        if (entry.TokenEstimation?.Mode is { } modeName)
        {
            if (TokenEstimationModes.TryParse(modeName, out var parsed))
            {
                mode = parsed;
            }
            else
            {
                Fail("TokenEstimation", $"TokenEstimation:Mode '{modeName}' is not one of {TokenEstimationModes.Names}");
            }
        }

        if (entry.MaxContextLength is <= 0)
        {
            Fail("MaxContextLength", $"MaxContextLength must be positive, got {entry.MaxContextLength}");
        }

        var status = EndpointStatus.Ready;
        if (entry.Status is not null && !EndpointStatusExtensions.TryParse(entry.Status, out status))
        {
            Fail("Status", $"Status '{entry.Status}' is not one of Ready, Loading, Error, Disabled");
        }

        AdapterStack? stack = null;
        if (entry.Adapters is not null)
        {
            if (entry.Adapter is not null)
            {
                Fail("Adapters", "Adapter and Adapters are both set; use one");
            }

            stack = new AdapterStack(entry.Adapters.Select(a => new AdapterRef(a.Name ?? "", a.Weight)));
            if (stack.Validate() is { } stackError)
            {
                Fail("Adapters", $"Adapters: {stackError}");
            }
        }

        if (entry.Adapter is not null && string.IsNullOrWhiteSpace(entry.Adapter))
        {
            Fail("Adapter", "Adapter must not be empty");
        }

        foreach (var alias in entry.Aliases ?? [])
        {
            if (string.IsNullOrWhiteSpace(alias))
            {
                Fail("Aliases", "Aliases: an alias must be a non-empty name");
            }
        }

        foreach (var fallback in entry.Fallbacks ?? [])
        {
            if (string.IsNullOrWhiteSpace(fallback))
            {
                Fail("Fallbacks", "Fallbacks: a fallback must be a non-empty endpoint id");
            }
            else if (fallback == id)
            {
                Fail("Fallbacks", $"Fallbacks: '{fallback}' is the endpoint itself");
            }
        }

        if (failed || string.IsNullOrEmpty(id))
        {
            return null;
        }

        return new ModelEndpoint(id, string.IsNullOrWhiteSpace(entry.BaseModel) ? id : entry.BaseModel, entry.Cluster!)
        {
            Adapter = entry.Adapter,
            Adapters = stack?.Normalize(),
            UpstreamModel = string.IsNullOrWhiteSpace(entry.UpstreamModel) ? null : entry.UpstreamModel,
            MaxContextLength = entry.MaxContextLength ?? ModelEndpoint.DefaultMaxContextLength,
            IsDefault = entry.IsDefault,
            Status = status,
            DisplayName = entry.DisplayName,
            Description = entry.Description ?? "",
            Aliases = entry.Aliases?.ToArray() ?? [],
            TokenEncoding = string.IsNullOrWhiteSpace(entry.TokenEncoding) ? null : entry.TokenEncoding,
            TokenEstimationMode = mode,
            Fallbacks = entry.Fallbacks?.Distinct(StringComparer.Ordinal).ToArray() ?? [],
        };
    }

    internal static bool IsSupportedEncoding(string? encoding) =>
        TiktokenTokenCounter.SupportedEncodings.Contains(encoding, StringComparer.OrdinalIgnoreCase);
}
