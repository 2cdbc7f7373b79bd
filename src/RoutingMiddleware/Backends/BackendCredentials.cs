using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using ModelRouting.Configuration;
using ModelRouting.Proxy;
using ModelRouting.Logging;

namespace ModelRouting.Backends;

/// <summary>
/// The per-cluster backend settings of <c>ModelRouting:Backends</c> as a lookup that follows reloads: the
/// <c>Authorization</c> value for a cluster's destinations and its adapter reconciliation interval. An entry
/// naming a cluster the proxy does not have is logged as a warning once (a typo would otherwise send no key).
/// Keys are never logged.
/// </summary>
/// <remarks>Thread-safe: lookups read an immutable snapshot rebuilt when the options instance changes.</remarks>
internal sealed partial class BackendCredentials : IDisposable
{
    private readonly IOptionsMonitor<ModelRoutingOptions> _options;
    private readonly ModelRoutingProxyConfigProvider _proxyConfig;
    private readonly ILogger<BackendCredentials> _logger;
    private readonly IDisposable? _optionsSubscription;
    private readonly IDisposable _proxySubscription;
    private readonly Lock _warnLock = new();
    private readonly HashSet<string> _warned = new(StringComparer.OrdinalIgnoreCase);
    private Snapshot _snapshot;

    public BackendCredentials(IOptionsMonitor<ModelRoutingOptions> options, ModelRoutingProxyConfigProvider proxyConfig, ILogger<BackendCredentials> logger)
    {
        _options = options;
        _proxyConfig = proxyConfig;
        _logger = logger;
        _snapshot = new Snapshot(options.CurrentValue);
        CheckClusters();
        _optionsSubscription = options.OnChange(_ => CheckClusters());
        _proxySubscription = ChangeToken.OnChange(() => _proxyConfig.GetConfig().ChangeToken, CheckClusters);
    }

    /// <summary>Gets the <c>Authorization</c> header value (<c>Bearer &lt;key&gt;</c>) for <paramref name="clusterId"/>, if it has a key.</summary>
    public bool TryGetAuthorization(string clusterId, [NotNullWhen(true)] out string? value) =>
        Current.Authorization.TryGetValue(clusterId, out value);

    /// <summary>Gets how often adapters on <paramref name="clusterId"/> are reconciled.</summary>
    public TimeSpan AdapterReconcileInterval(string clusterId) =>
        Current.Intervals.TryGetValue(clusterId, out var interval) ? interval : BackendOptions.DefaultAdapterReconcileInterval;

    public void Dispose()
    {
        _optionsSubscription?.Dispose();
        _proxySubscription.Dispose();
    }

    private Snapshot Current
    {
        get
        {
            var snapshot = Volatile.Read(ref _snapshot);
            var options = _options.CurrentValue;
            if (!ReferenceEquals(snapshot.Source, options))
            {
                // A benign race: two readers may both build the same snapshot.
                snapshot = new Snapshot(options);
                Volatile.Write(ref _snapshot, snapshot);
            }

            return snapshot;
        }
    }

    private void CheckClusters()
    {
        var clusters = _proxyConfig.Current.ClusterIds;
        var known = new HashSet<string>(clusters, StringComparer.OrdinalIgnoreCase);
        lock (_warnLock)
        {
            foreach (var name in Current.Names)
            {
                if (known.Contains(name))
                {
                    _warned.Remove(name);
                }
                else if (_warned.Add(name))
                {
                    Log.UnknownCluster(_logger, LogValue.Sanitize(name));
                }
            }
        }
    }

    private sealed class Snapshot
    {
        public Snapshot(ModelRoutingOptions source)
        {
            Source = source;
            var backends = source.Backends ?? [];
            Names = [.. backends.Keys];
            Authorization = backends
                .Where(b => !string.IsNullOrWhiteSpace(b.Value?.ApiKey))
                .GroupBy(b => b.Key, StringComparer.OrdinalIgnoreCase)
                .ToFrozenDictionary(g => g.Key, g => "Bearer " + g.Last().Value.ApiKey!.Trim(), StringComparer.OrdinalIgnoreCase);
            Intervals = backends
                .Where(b => b.Value is not null)
                .GroupBy(b => b.Key, StringComparer.OrdinalIgnoreCase)
                .ToFrozenDictionary(g => g.Key, g => g.Last().Value.AdapterReconcileInterval, StringComparer.OrdinalIgnoreCase);
        }

        public ModelRoutingOptions Source { get; }

        public IReadOnlyList<string> Names { get; }

        public FrozenDictionary<string, string> Authorization { get; }

        public FrozenDictionary<string, TimeSpan> Intervals { get; }
    }

    private static partial class Log
    {
        [LoggerMessage(110, LogLevel.Warning, "ModelRouting:Backends names cluster '{Cluster}', which the proxy configuration does not have; its settings are not used.", EventName = "BackendUnknownCluster")]
        public static partial void UnknownCluster(ILogger logger, string cluster);
    }
}
