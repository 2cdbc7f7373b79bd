using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Admin;
using ModelRouting.Proxy;
using ModelRouting.Registry;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Configuration;

/// <summary>
/// Validates a gateway's whole configuration without serving (SPEC §11, like <c>nginx -t</c>): the proxy
/// routes and clusters (YARP's own validation, and overlapping routes), the model registry with every error
/// naming entry and field, the runtime state file; then prints a one-screen summary.
/// </summary>
public static class ModelRoutingConfigurationCheck
{
    /// <summary>
    /// Checks the configuration of a built (not started) host and writes the errors, or the summary, to
    /// <paramref name="output"/>. Returns whether the configuration is valid.
    /// </summary>
    public static async Task<bool> RunAsync(IServiceProvider services, IConfiguration configuration, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(output);
        var errors = new List<string>();

        ModelRoutingProxyConfigProvider.MergedConfig? proxy = null;
        try
        {
            proxy = services.GetRequiredService<ModelRoutingProxyConfigProvider>().Current;
        }
        catch (ModelRoutingConfigurationException e)
        {
            errors.AddRange(e.Errors);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            errors.Add("ReverseProxy: " + e.Message);
        }

        var userRoutes = proxy?.Routes.Where(r => !ModelRoutingProxyConfigProvider.IsGenerated(r.RouteId)).ToList() ?? [];
        if (proxy is not null)
        {
            var validator = services.GetRequiredService<IConfigValidator>();
            foreach (var route in userRoutes)
            {
                errors.AddRange((await validator.ValidateRouteAsync(route)).Select(e => $"ReverseProxy:Routes:{route.RouteId}: {e.Message}"));
            }

            foreach (var cluster in proxy.Clusters)
            {
                errors.AddRange((await validator.ValidateClusterAsync(cluster)).Select(e => $"ReverseProxy:Clusters:{cluster.ClusterId}: {e.Message}"));
            }
        }

        ModelRegistrySource? source = null;
        try
        {
            source = services.GetRequiredService<ModelRegistrySource>();
        }
        catch (ModelRoutingConfigurationException e)
        {
            errors.AddRange(e.Errors);
        }

        if (errors.Count > 0)
        {
            await output.WriteLineAsync($"Configuration check FAILED: {errors.Count} error(s).");
            foreach (var error in errors)
            {
                await output.WriteLineAsync("  - " + error);
            }

            return false;
        }

        await WriteSummaryAsync(output, configuration, proxy!, userRoutes, source!, services.GetService<RuntimeStateStore>());
        return true;
    }

    private static async Task WriteSummaryAsync(
        TextWriter output, IConfiguration configuration, ModelRoutingProxyConfigProvider.MergedConfig proxy, List<RouteConfig> routes, ModelRegistrySource source, RuntimeStateStore? store)
    {
        var registry = source.Current.Router.Registry;
        var files = configuration is IConfigurationRoot root
            ? root.Providers.OfType<FileConfigurationProvider>()
                .Select(p => p.Source.FileProvider?.GetFileInfo(p.Source.Path ?? ""))
                .Where(f => f is { Exists: true, PhysicalPath: not null })
                .Select(f => f!.PhysicalPath!)
                .ToList()
            : [];
        await output.WriteLineAsync("Configuration OK");
        await output.WriteLineAsync($"  files:        {(files.Count == 0 ? "(none)" : string.Join(", ", files))}");
        await output.WriteLineAsync($"  routes:       {routes.Count}: {string.Join(", ", routes.Select(r => $"{r.RouteId} {r.Match.Path} → {r.ClusterId}"))}");
        await output.WriteLineAsync($"  clusters:     {proxy.Clusters.Count}: {string.Join(", ", proxy.Clusters.Select(c => $"{c.ClusterId} ({Count(c.Destinations?.Count ?? 0, "destination")})"))}");
        await output.WriteLineAsync($"  endpoints:    {registry.Count} ({registry.AvailableEndpoints.Count()} ready)");
        var width = Math.Min(32, registry.AllEndpoints.Select(e => e.Id.Value.Length).DefaultIfEmpty(0).Max());
        foreach (var endpoint in registry.AllEndpoints)
        {
            var aliases = registry.AliasesOf(endpoint.Id.Value);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"    {endpoint.Id.Value.PadRight(width)}  → {endpoint.Cluster} as '{endpoint.UpstreamModel}', {endpoint.MaxContextLength} tokens, {endpoint.Status.ToWireName()}"
                + $"{(registry.DefaultId == endpoint.Id.Value ? ", default" : "")}{(aliases.Count > 0 ? ", aliases: " + string.Join(", ", aliases) : "")}"));
        }

        await output.WriteLineAsync($"  default:      {registry.DefaultId ?? "none (requests must name a model)"}");
        await output.WriteLineAsync($"  aliases:      {(registry.Aliases.Count == 0 ? "none" : string.Join(", ", registry.Aliases.OrderBy(a => a.Key, StringComparer.Ordinal).Select(a => $"{a.Key} → {a.Value}")))}");
        var keys = source.Current.Keys.All;
        await output.WriteLineAsync(keys.Count == 0
            ? "  keys:         none: every client is admitted"
            : $"  keys:         {keys.Count} ({string.Join(", ", keys.Select(k => k.Id + (k.Limits is null ? "" : " (limited)") + (k.Enabled ? "" : " (disabled)")))}): every client request needs one");
        var passThrough = configuration.GetSection("ModelRouting:PassThroughPaths").GetChildren().Select(c => c.Value).ToList();
        await output.WriteLineAsync($"  pass-through: {(passThrough.Count == 0 ? "none" : string.Join(", ", passThrough))}");
        var admin = configuration["ModelRouting:Admin:Urls"];
        var key = configuration["ModelRouting:Admin:Key"];
        await output.WriteLineAsync($"  management:   {(admin is null ? AdminOptions.DefaultUrls : admin.Length == 0 ? "off" : admin)}; admin API {(string.IsNullOrEmpty(key) ? "off (no ModelRouting:Admin:Key)" : "on")}");
        await output.WriteLineAsync($"  runtime state: {store?.Path ?? "not persisted"}");
    }

    private static string Count(int n, string noun) => n.ToString(CultureInfo.InvariantCulture) + " " + noun + (n == 1 ? "" : "s");
}
