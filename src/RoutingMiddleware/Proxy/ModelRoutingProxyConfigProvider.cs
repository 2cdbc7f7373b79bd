using Microsoft.Extensions.Primitives;
using Yarp.ReverseProxy.Configuration;

namespace ModelRouting.Proxy;

/// <summary>
/// Wraps the host's YARP configuration providers and adds the routes model routing needs, so users write
/// none by hand: for each (route, cluster) pair a clone of the route bound to that cluster (YARP's
/// two-argument <c>ReassignProxyRequest</c> needs a route whose cluster is the target, or passive health
/// updates the wrong cluster), with the route's transforms; and the gateway's own routes
/// (<c>/v1/models</c>, <c>/healthz</c>, <c>/readyz</c>), answered by the pipeline step.
/// </summary>
internal sealed class ModelRoutingProxyConfigProvider(IReadOnlyList<IProxyConfigProvider> inner) : IProxyConfigProvider
{
    /// <summary>Every route this provider generates has an id starting with this.</summary>
    public const string GeneratedRoutePrefix = "__model-routing/";

    public const string ModelsRouteId = GeneratedRoutePrefix + "models";
    public const string ModelRouteId = GeneratedRoutePrefix + "model";
    public const string HealthRouteId = GeneratedRoutePrefix + "healthz";
    public const string ReadyRouteId = GeneratedRoutePrefix + "readyz";

    private const string ClonePrefix = GeneratedRoutePrefix + "clone/";

    private readonly Lock _lock = new();
    private MergedConfig? _current;

    public IProxyConfig GetConfig() => Current;

    /// <summary>Gets the merged configuration: the inner providers' routes and clusters plus the generated routes.</summary>
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
                if (_current is null || !_current.IsBuiltFrom(configs))
                {
                    _current = new MergedConfig(configs);
                }

                return _current;
            }
        }
    }

    /// <summary>Gets the id of the clone of <paramref name="routeId"/> bound to <paramref name="clusterId"/>, if any.</summary>
    public static bool IsGenerated(string routeId) => routeId.StartsWith(GeneratedRoutePrefix, StringComparison.Ordinal);

    internal sealed class MergedConfig : IProxyConfig
    {
        private readonly IProxyConfig[] _sources;
        private readonly Dictionary<(string Route, string Cluster), string> _clones = [];

        public MergedConfig(IProxyConfig[] sources)
        {
            _sources = sources;
            var userRoutes = sources.SelectMany(s => s.Routes).Where(r => !IsGenerated(r.RouteId)).ToList();
            var clusters = sources.SelectMany(s => s.Clusters).ToList();
            ClusterIds = clusters.Select(c => c.ClusterId).ToHashSet(StringComparer.Ordinal);

            var routes = new List<RouteConfig>(userRoutes);
            var n = 0;
            foreach (var route in userRoutes)
            {
                foreach (var cluster in clusters)
                {
                    if (cluster.ClusterId == route.ClusterId)
                    {
                        continue;
                    }

                    var id = $"{ClonePrefix}{n}";
                    _clones[(route.RouteId, cluster.ClusterId)] = id;
                    routes.Add(route with
                    {
                        RouteId = id,
                        ClusterId = cluster.ClusterId,
                        Order = int.MaxValue,

                        // Unique, so a request that names it is not ambiguous; the pipeline step refuses it.
                        Match = new RouteMatch { Path = $"/{ClonePrefix}{n}" },
                    });
                    n++;
                }
            }

            if (clusters.Count > 0)
            {
                var anyCluster = clusters[0].ClusterId;
                routes.Add(Own(ModelsRouteId, "/v1/models", anyCluster));
                routes.Add(Own(ModelRouteId, "/v1/models/{**id}", anyCluster));
                routes.Add(Own(HealthRouteId, "/healthz", anyCluster));
                routes.Add(Own(ReadyRouteId, "/readyz", anyCluster));
            }

            Routes = routes;
            Clusters = clusters;
            var tokens = sources.Select(s => s.ChangeToken).ToList();
            ChangeToken = tokens.Count == 1 ? tokens[0] : new CompositeChangeToken(tokens);
            RevisionId = string.Join("|", sources.Select(s => s.RevisionId));
        }

        public IReadOnlyList<RouteConfig> Routes { get; }

        public IReadOnlyList<ClusterConfig> Clusters { get; }

        public IChangeToken ChangeToken { get; }

        public string RevisionId { get; }

        public IReadOnlySet<string> ClusterIds { get; }

        public bool IsBuiltFrom(IProxyConfig[] configs) => configs.AsSpan().SequenceEqual(_sources);

        public bool TryGetCloneRouteId(string routeId, string clusterId, out string? cloneId) =>
            _clones.TryGetValue((routeId, clusterId), out cloneId);

        private static RouteConfig Own(string id, string path, string cluster) => new()
        {
            RouteId = id,
            ClusterId = cluster,
            Order = -100_000,
            Match = new RouteMatch { Path = path, Methods = ["GET", "HEAD"] },
        };
    }
}
