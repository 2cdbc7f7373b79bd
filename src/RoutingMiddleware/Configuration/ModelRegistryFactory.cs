using ModelRouting.Inspection;
using ModelRouting.Keys;
using ModelRouting.Quotas;
using ModelRouting.Registry;

namespace ModelRouting.Configuration;

/// <summary>
/// Validates <see cref="ModelRoutingOptions"/> and builds a registry from them. Validation collects every
/// error before reporting, each naming the entry and the field.
/// </summary>
public static class ModelRegistryFactory
{
    /// <summary>
    /// Builds a registry from <paramref name="options"/>. Registration times of endpoints that exist in
    /// <paramref name="previous"/> are kept, so <c>created</c> stays stable across reloads.
    /// </summary>
    /// <param name="options">The bound configuration.</param>
    /// <param name="clusterIds">The ReverseProxy cluster ids an endpoint may name.</param>
    /// <param name="previous">The registry in force, if any.</param>
    /// <param name="time">The clock for registration times.</param>
    public static (ModelRegistry? Registry, IReadOnlyList<string> Errors) Build(
        ModelRoutingOptions options, IReadOnlySet<string> clusterIds, ModelRegistry? previous, TimeProvider time)
    {
        var errors = new List<string>();
        if (options.MaxRequestBodyBytes <= 0)
        {
            errors.Add($"ModelRouting:MaxRequestBodyBytes: must be positive, got {options.MaxRequestBodyBytes}");
        }

        if (options.RetryAfterSeconds < 0)
        {
            errors.Add($"ModelRouting:RetryAfterSeconds: must not be negative, got {options.RetryAfterSeconds}");
        }

        for (var i = 0; i < (options.PassThroughPaths?.Length ?? 0); i++)
        {
            if (Proxy.ClientSurface.Validate(options.PassThroughPaths![i]) is { } problem)
            {
                errors.Add($"ModelRouting:PassThroughPaths[{i}]: {problem}");
            }
        }

        var failover = options.Failover ?? new FailoverOptions();
        if (failover.MaxAttempts is < 1 or > 10)
        {
            errors.Add($"ModelRouting:Failover:MaxAttempts: must be between 1 and 10, got {failover.MaxAttempts}");
        }

        if (failover.Cooldown < TimeSpan.Zero)
        {
            errors.Add($"ModelRouting:Failover:Cooldown: must not be negative, got {failover.Cooldown}");
        }

        foreach (var status in failover.RetryOn ?? [])
        {
            if (status is < 400 or > 599)
            {
                errors.Add($"ModelRouting:Failover:RetryOn: {status} is not an error status (400-599)");
            }
        }

        var estimation = options.TokenEstimation;
        if (!TokenEstimationModes.TryParse(estimation.Mode, out _))
        {
            errors.Add($"ModelRouting:TokenEstimation:Mode: '{estimation.Mode}' is not one of {TokenEstimationModes.Names}");
        }

        if (estimation.BackendTimeout <= TimeSpan.Zero)
        {
            errors.Add($"ModelRouting:TokenEstimation:BackendTimeout: must be positive, got {estimation.BackendTimeout}");
        }

        if (!IsSupportedEncoding(estimation.Encoding))
        {
            errors.Add($"ModelRouting:TokenEstimation:Encoding: '{estimation.Encoding}' is not one of {string.Join(", ", TiktokenTokenCounter.SupportedEncodings)}");
        }

        if (estimation.MediaPartTokens < 0 || estimation.ExactCountMargin < 0 || estimation.CacheSize <= 0)
        {
            errors.Add("ModelRouting:TokenEstimation: MediaPartTokens and ExactCountMargin must not be negative and CacheSize must be positive");
        }

        var registry = new ModelRegistry(time);
        var seenIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var aliasOwners = new Dictionary<string, string>(StringComparer.Ordinal);
        string? defaultId = null;
        var endpoints = new List<ModelEndpoint>();

        for (var i = 0; i < options.Endpoints.Count; i++)
        {
            var entry = options.Endpoints[i];
            var id = entry.Id?.Trim();
            var where = string.IsNullOrEmpty(id) ? $"ModelRouting:Endpoints[{i}]" : $"ModelRouting:Endpoints[{i}] ('{id}')";
            var entryErrors = errors.Count;
            if (string.IsNullOrEmpty(id))
            {
                errors.Add($"{where}: Id is required");
            }
            else if (!seenIds.TryAdd(id, i))
            {
                errors.Add($"{where}: Id '{id}' is a duplicate of ModelRouting:Endpoints[{seenIds[id]}]");
            }

            var endpoint = ModelEndpointValidator.Validate(entry, id, clusterIds, (_, message) => errors.Add($"{where}: {message}"));

            if (entry.IsDefault)
            {
                if (defaultId is not null)
                {
                    errors.Add($"{where}: IsDefault is set, but '{defaultId}' is already the default");
                }

                defaultId ??= id;
            }

            foreach (var alias in entry.Aliases ?? [])
            {
                if (!string.IsNullOrWhiteSpace(alias) && !string.IsNullOrEmpty(id) && !aliasOwners.TryAdd(alias, id))
                {
                    errors.Add($"{where}: Aliases: '{alias}' collides with an alias of endpoint '{aliasOwners[alias]}'");
                }
            }

            if (errors.Count > entryErrors || endpoint is null)
            {
                continue;
            }

            endpoints.Add(endpoint);
        }

        foreach (var endpoint in endpoints)
        {
            foreach (var fallback in endpoint.Fallbacks)
            {
                if (!seenIds.ContainsKey(fallback))
                {
                    var where = $"ModelRouting:Endpoints[{seenIds[endpoint.Id.Value]}] ('{endpoint.Id}')";
                    errors.Add(aliasOwners.TryGetValue(fallback, out var owner)
                        ? $"{where}: Fallbacks: '{fallback}' is an alias; name the endpoint id '{owner}'"
                        : $"{where}: Fallbacks: '{fallback}' is not an endpoint id");
                }
            }
        }

        foreach (var (alias, owner) in aliasOwners)
        {
            if (seenIds.TryGetValue(alias, out var index))
            {
                errors.Add($"ModelRouting:Endpoints[{seenIds[owner]}] ('{owner}'): Aliases: '{alias}' collides with the id of ModelRouting:Endpoints[{index}]");
            }
        }

        if (errors.Count > 0)
        {
            return (null, errors);
        }

        foreach (var endpoint in endpoints)
        {
            var kept = previous is not null && previous.TryGet(endpoint.Id.Value, out var old) ? endpoint with { RegisteredAt = old.RegisteredAt } : endpoint;
            var result = registry.Register(kept);
            if (!result.Succeeded)
            {
                errors.Add($"ModelRouting:Endpoints[{seenIds[endpoint.Id.Value]}] ('{endpoint.Id}'): {result.Error}");
                continue;
            }

            registry = result.Registry;
        }

        ClientKeyValidator.ValidateAll(options.Keys ?? [], registry, errors);
        for (var i = 0; i < options.Endpoints.Count; i++)
        {
            var entry = options.Endpoints[i];
            RateLimits.Validate(entry.Limits, (field, message) => errors.Add($"ModelRouting:Endpoints[{i}] ('{entry.Id}'): {field}: {message}"));
        }

        if (options.Limits is { DefaultOutputTokens: < 0 } limits)
        {
            errors.Add($"ModelRouting:Limits:DefaultOutputTokens: must not be negative, got {limits.DefaultOutputTokens}");
        }

        return errors.Count > 0 ? (null, errors) : (registry, errors);
    }

    private static bool IsSupportedEncoding(string? encoding) => ModelEndpointValidator.IsSupportedEncoding(encoding);
}
