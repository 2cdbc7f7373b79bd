using System.Collections.Concurrent;
using System.IO.Hashing;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Primitives;
using ModelRouting.Configuration;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Proxy;

/// <summary>
/// Wraps the host's YARP configuration providers and adds the routes model routing needs, so users write
/// none by hand: for each (route, cluster) pair a clone of the route bound to that cluster (YARP's
/// two-argument <c>ReassignProxyRequest</c> needs a route whose cluster is the target, or passive health
/// updates the wrong cluster), with the route's transforms and metadata.
/// </summary>
/// <remarks>
/// A clone's id is made from its (route, cluster) pair, never from a position, so adding or removing a
/// cluster leaves every other pair's route as it was: a request paired with a clone while YARP applies a
/// new configuration still gets the route bound to its cluster. Routes that would match the same requests
/// are refused (<see cref="RouteOverlap"/>): at start-up with an exception naming both, on a reload with an
/// error in the log while the last good configuration stays in force.
/// </remarks>
internal sealed partial class ModelRoutingProxyConfigProvider(IReadOnlyList<IProxyConfigProvider> inner, ILogger<ModelRoutingProxyConfigProvider>? logger = null)
    : IProxyConfigProvider
{
    /// <summary>Every route this provider generates has an id starting with this.</summary>
    public const string GeneratedRoutePrefix = "__model-routing/";

    private const string ClonePrefix = GeneratedRoutePrefix + "clone/";
    private static readonly ConcurrentDictionary<(string Route, string Cluster), string> s_cloneIds = new();

    private readonly ILogger _logger = logger ?? NullLogger<ModelRoutingProxyConfigProvider>.Instance;
    private readonly Lock _lock = new();
    private MergedConfig? _current;

    public IProxyConfig GetConfig() => Current;

    /// <summary>
    /// Gets the merged configuration: the inner providers' routes and clusters plus the generated routes.
    /// </summary>
    /// <exception cref="ModelRoutingConfigurationException">The first configuration has overlapping routes.</exception>
    public MergedConfig Current
    {
        get
        {
            var configs = new IProxyConfig[inner.Count];
            for (var i = 0; i < configs.Length; i++)
            {
                configs[i] = inner[i].GetConfig();
            }

            lock (_lock)
            {
                if (_current is not null && _current.IsBuiltFrom(configs))
                {
                    return _current;
                }

                var next = new MergedConfig(configs);
                if (next.Errors.Count > 0)
                {
                    if (_current is null)
                    {
                        throw new ModelRoutingConfigurationException(next.Errors);
                    }

                    Log.ReloadRejected(_logger, string.Join("; ", next.Errors));
                    next = _current.WithSources(configs);
                }

                return _current = next;
            }
        }
    }

    /// <summary>Gets the cluster ids of the inner providers' configuration, whether or not it is valid.</summary>
    public IReadOnlySet<string> InnerClusterIds() =>
        inner.SelectMany(p => p.GetConfig().Clusters).Select(c => c.ClusterId).ToHashSet(StringComparer.Ordinal);

    /// <summary>Returns whether <paramref name="routeId"/> is a route this provider generated.</summary>
    public static bool IsGenerated(string routeId) => routeId.StartsWith(GeneratedRoutePrefix, StringComparison.Ordinal);

    /// <summary>Gets the id of the clone of <paramref name="routeId"/> bound to <paramref name="clusterId"/>; the same for the same pair.</summary>
    public static string CloneRouteId(string routeId, string clusterId)
    {
        if (s_cloneIds.TryGetValue((routeId, clusterId), out var id))
        {
            return id;
        }

        if (s_cloneIds.Count > 10_000)
        {
            s_cloneIds.Clear();
        }

        // Escaped, so no two pairs give one id (a '/' in either id is %2F).
        id = ClonePrefix + Uri.EscapeDataString(routeId) + "/" + Uri.EscapeDataString(clusterId);
        return s_cloneIds[(routeId, clusterId)] = id;
    }

    internal sealed class MergedConfig : IProxyConfig
    {
        private readonly IProxyConfig[] _sources;

        public MergedConfig(IProxyConfig[] sources)
        {
            _sources = sources;
            var userRoutes = sources.SelectMany(s => s.Routes).Where(r => !IsGenerated(r.RouteId)).ToList();
            var clusters = sources.SelectMany(s => s.Clusters).ToList();
            ClusterIds = clusters.Select(c => c.ClusterId).ToHashSet(StringComparer.Ordinal);
            Errors = RouteOverlap.Find(userRoutes);

            var routes = new List<RouteConfig>(userRoutes);
            foreach (var route in userRoutes)
            {
                foreach (var cluster in clusters)
                {
                    if (cluster.ClusterId == route.ClusterId)
                    {
                        continue;
                    }

                    var id = CloneRouteId(route.RouteId, cluster.ClusterId);
                    routes.Add(route with
                    {
                        RouteId = id,
                        ClusterId = cluster.ClusterId,
                        Order = int.MaxValue,

                        // Unique and not a path a client would send; the gateway refuses it as an unknown path.
                        Match = new RouteMatch { Path = "/" + GeneratedRoutePrefix + "clone/" + Convert.ToHexStringLower(XxHash128.Hash(Encoding.UTF8.GetBytes(id))) },
                    });
                }
            }

            Routes = routes;
            Clusters = clusters;
            ChangeToken = Combine(sources);
            RevisionId = string.Join("|", sources.Select(s => s.RevisionId));
        }

        private MergedConfig(MergedConfig lastGood, IProxyConfig[] sources)
        {
            _sources = sources;
            Routes = lastGood.Routes;
            Clusters = lastGood.Clusters;
            ClusterIds = lastGood.ClusterIds;
            Errors = [];
            ChangeToken = Combine(sources);
            RevisionId = lastGood.RevisionId;
        }

        public IReadOnlyList<RouteConfig> Routes { get; }

        public IReadOnlyList<ClusterConfig> Clusters { get; }

        public IChangeToken ChangeToken { get; }

        public string RevisionId { get; }

        /// <summary>Gets the cluster ids of this configuration.</summary>
        public IReadOnlySet<string> ClusterIds { get; }

        /// <summary>Gets why the sources' configuration is refused (empty when it is not).</summary>
        public IReadOnlyList<string> Errors { get; }

        public bool IsBuiltFrom(IProxyConfig[] configs) => configs.AsSpan().SequenceEqual(_sources);

        /// <summary>Keeps this configuration in force while watching <paramref name="sources"/> for the next change.</summary>
        public MergedConfig WithSources(IProxyConfig[] sources) => new(this, sources);

        private static IChangeToken Combine(IProxyConfig[] sources) =>
            sources.Length == 1 ? sources[0].ChangeToken : new CompositeChangeToken([.. sources.Select(s => s.ChangeToken)]);
    }

    private static partial class Log
    {
        [LoggerMessage(20, LogLevel.Error, "The new ReverseProxy configuration is refused; the last good one stays in force: {Errors}", EventName = "ProxyConfigRejected")]
        public static partial void ReloadRejected(ILogger logger, string errors);
    }
}
