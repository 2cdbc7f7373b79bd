using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using ModelRouting.Admin;
using ModelRouting.Keys;
using ModelRouting.Logging;
using ModelRouting.Health;
using ModelRouting.Proxy;
using ModelRouting.Registry;
using ModelRouting.Routing;
using ModelRouting.SharedState;

namespace ModelRouting.Configuration;

/// <summary>
/// Holds the routing state the request path reads and rebuilds it when the <c>ModelRouting</c> options or
/// the YARP clusters change. An invalid change is logged and the last good state stays in force.
/// </summary>
/// <remarks>
/// The state is composed in three layers: the registry built from configuration; the runtime overlay of
/// admin API changes re-applied over it (runtime wins for the same id); the conditions the gateway observed
/// (backend health, adapter loads, discovery), which only turn a Ready endpoint into Error or Loading.
/// Thread-safe: readers take <see cref="Current"/> once per request; writers swap it atomically.
/// </remarks>
public sealed partial class ModelRegistrySource : IDisposable
{
    private readonly IOptionsMonitor<ModelRoutingOptions> _options;
    private readonly ModelRoutingProxyConfigProvider _proxyConfig;
    private readonly TimeProvider _time;
    private readonly ILogger<ModelRegistrySource> _logger;
    private readonly RuntimeStateStore _store;
    private readonly IDisposable? _optionsSubscription;
    private readonly IDisposable? _proxySubscription;
    private readonly ProxyConfigAppliedSignal? _applied;
    private readonly SharedOverlayStore? _shared;
    private readonly Lock _writeLock = new();
    private ModelRoutingOptions _optionsInForce;
    private ModelRegistry _configured;
    private RuntimeOverlay _overlay;
    private ModelRegistry _administered;
    private EndpointConditions _conditions = EndpointConditions.Empty;
    private RoutingState _current;
    private IReadOnlySet<string> _clusterIds;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _reloads;
    private SharedOverlayMark _sharedMark = SharedOverlayMark.None;

    internal ModelRegistrySource(
        IOptionsMonitor<ModelRoutingOptions> options,
        ModelRoutingProxyConfigProvider proxyConfig,
        TimeProvider time,
        ILogger<ModelRegistrySource> logger,
        RuntimeStateStore? store = null,
        ProxyConfigAppliedSignal? applied = null,
        SharedOverlayStore? shared = null)
    {
        _options = options;
        _proxyConfig = proxyConfig;
        _time = time;
        _logger = logger;
        _store = store ?? new RuntimeStateStore(null);
        _applied = applied;
        _shared = shared is { Enabled: true } ? shared : null;

        // At start-up YARP applies this same configuration before the first request. Every error is reported
        // at once: the proxy configuration's and the registry's.
        var proxyErrors = new List<string>();
        try
        {
            _clusterIds = _proxyConfig.Current.ClusterIds;
        }
        catch (ModelRoutingConfigurationException e)
        {
            proxyErrors.AddRange(e.Errors);
            _clusterIds = _proxyConfig.InnerClusterIds();
        }

        _optionsInForce = options.CurrentValue;
        var (registry, errors) = ModelRegistryFactory.Build(_optionsInForce, _clusterIds, null, _time);
        if (registry is null || proxyErrors.Count > 0)
        {
            throw new ModelRoutingConfigurationException([.. proxyErrors, .. errors]);
        }

        _configured = registry;
        _overlay = DefaultOverrideScope.Review(_store.Load(), _configured, _store, _logger);
        if (_shared is not null)
        {
            // Redis is the source of truth; the local state file is only the last-known-good for a cold start
            // while Redis is down. A Redis that holds no overlay yet takes this replica's.
            try
            {
                SynchronizeLocked(_shared);
            }
            catch (SharedStateUnavailableException)
            {
                // Logged by the connection; the sync service joins Redis when it answers.
            }
        }

        (_administered, _current) = Compose();
        Log.Loaded(_logger, _current.Router.Registry.Count);
        WarnOfPlainKeys(_optionsInForce);

        _optionsSubscription = options.OnChange(_ => Reload());
        if (applied is not null)
        {
            applied.Applied += OnProxyConfigApplied;
        }
        else
        {
            // Without YARP's signal (a host that builds the source by hand), follow the provider's changes.
            _proxySubscription = ChangeToken.OnChange(() => _proxyConfig.GetConfig().ChangeToken, () => OnProxyConfigApplied(_proxyConfig.Current.ClusterIds));
        }
    }

    /// <summary>Gets the routing state in force.</summary>
    public RoutingState Current => Volatile.Read(ref _current);

    /// <summary>Gets the registry from configuration plus runtime changes, before observed conditions.</summary>
    internal ModelRegistry Administered => Volatile.Read(ref _administered);

    /// <summary>Gets the runtime changes in force.</summary>
    internal RuntimeOverlay Overlay => Volatile.Read(ref _overlay);

    /// <summary>Gets the conditions in force.</summary>
    internal EndpointConditions Conditions => Volatile.Read(ref _conditions);

    /// <summary>Gets the clusters the registry may name.</summary>
    internal IReadOnlySet<string> ClusterIds => Volatile.Read(ref _clusterIds);

    /// <summary>Gets the registry built from configuration, before runtime changes.</summary>
    internal ModelRegistry Configured => Volatile.Read(ref _configured);

    /// <summary>Gets whether configuration (before runtime changes) has an endpoint <paramref name="id"/>.</summary>
    internal bool ConfiguredContains(string id) => Volatile.Read(ref _configured).TryGet(id, out _);

    /// <summary>Gets the mark of the shared overlay (Redis) this replica last read or wrote; None when not shared.</summary>
    internal SharedOverlayMark SharedMark => _sharedMark;

    /// <summary>Gets the time source.</summary>
    internal TimeProvider Time => _time;

    /// <summary>Rebuilds the state from the current options and clusters; keeps the last good one on error.</summary>
    public void Reload()
    {
        lock (_writeLock)
        {
            var options = _options.CurrentValue;
            var (registry, errors) = ModelRegistryFactory.Build(options, _clusterIds, _configured, _time);
            if (registry is null)
            {
                // One edit can add a cluster and endpoints on it: the options may change before YARP has applied
                // the new clusters. Such a registry is applied when YARP has (OnProxyConfigApplied); only an
                // edit that is still invalid a moment later is reported.
                var pending = _proxyConfig.Current.ClusterIds;
                var waitsForClusters = !pending.SetEquals(_clusterIds) && ModelRegistryFactory.Build(options, pending, _configured, _time).Registry is not null;
                ReportLater(options, errors, waitsForClusters ? TimeSpan.FromSeconds(5) : TimeSpan.FromSeconds(1));
                return;
            }

            _reloads++;
            _optionsInForce = options;
            _configured = registry;
            _overlay = DefaultOverrideScope.Review(_overlay, registry, _store, _logger);
            Publish(Compose());
            Log.Reloaded(_logger, _current.Router.Registry.Count);
            WarnOfPlainKeys(options);
        }
    }

    /// <summary>
    /// Waits until the routing state differs from <paramref name="seen"/>, at most <paramref name="timeout"/>;
    /// returns whether it changed.
    /// </summary>
    internal async Task<bool> WaitForChangeAsync(RoutingState seen, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var changed = Volatile.Read(ref _changed);
        if (!ReferenceEquals(Current, seen))
        {
            return true;
        }

        try
        {
            await changed.Task.WaitAsync(timeout, _time, cancellationToken);
            return true;
        }
        catch (TimeoutException)
        {
            return !ReferenceEquals(Current, seen);
        }
    }

    private void OnProxyConfigApplied(IReadOnlySet<string> clusterIds)
    {
        lock (_writeLock)
        {
            if (clusterIds.SetEquals(_clusterIds) && ReferenceEquals(_options.CurrentValue, _optionsInForce))
            {
                return;
            }

            Volatile.Write(ref _clusterIds, clusterIds);
        }

        Reload();
    }

    // Logs the errors unless a reload has succeeded by then (the edit was waiting for its clusters).
    private void ReportLater(ModelRoutingOptions options, IReadOnlyList<string> errors, TimeSpan delay)
    {
        var generation = _reloads;
        ITimer? timer = null;
        timer = _time.CreateTimer(_ =>
        {
            timer?.Dispose();
            lock (_writeLock)
            {
                if (_reloads == generation && ReferenceEquals(_options.CurrentValue, options))
                {
                    Log.ReloadRejected(_logger, string.Join("; ", errors));
                }
            }
        }, null, delay, Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// Applies a change to the registry atomically: <paramref name="change"/> gets the registry in force and
    /// returns the new one, or an error that leaves it in force. The change is not persisted and lasts until
    /// the next reload; use the admin API for lasting runtime changes.
    /// </summary>
    public RegistryResult Update(Func<ModelRegistry, RegistryResult> change)
    {
        ArgumentNullException.ThrowIfNull(change);
        lock (_writeLock)
        {
            var result = change(_administered);
            if (result.Succeeded)
            {
                Publish((result.Registry, State(_conditions.ApplyTo(result.Registry))));
            }

            return result;
        }
    }

    /// <summary>
    /// Applies an admin change: <paramref name="change"/> validates against the administered registry and
    /// returns the next overlay (and optionally new conditions), or an error. The overlay is persisted
    /// before it takes effect; a failed write leaves everything as it was and throws.
    /// </summary>
    internal AdminChange Administer(Func<ModelRegistry, RuntimeOverlay, AdminChange> change)
    {
        lock (_writeLock)
        {
            var result = change(_administered, _overlay);
            if (result.Error is not null || result.Overlay is null)
            {
                return result;
            }

            if (_shared is not null)
            {
                result = AdministerShared(_shared, change, result);
                if (result.Error is not null || result.Overlay is null)
                {
                    return result;
                }
            }
            else
            {
                _store.Save(result.Overlay);
            }

            _overlay = result.Overlay;
            if (result.Conditions is not null)
            {
                _conditions = result.Conditions(_conditions);
            }

            Publish(Compose());
            return result;
        }
    }

    /// <summary>
    /// Brings this replica to the shared overlay in Redis (SPEC §16): applies a newer document, refuses a corrupt one
    /// (logged, the last good stays in force), or seeds an empty Redis with this replica's overlay.
    /// </summary>
    /// <exception cref="SharedStateUnavailableException">Redis did not answer.</exception>
    internal void SynchronizeShared()
    {
        if (_shared is not { } shared)
        {
            return;
        }

        var mark = shared.ReadMark();
        if (mark == _sharedMark && mark.Version != 0)
        {
            return;
        }

        lock (_writeLock)
        {
            if (SynchronizeLocked(shared))
            {
                Publish(Compose());
            }
        }
    }

    // Writes the overlay to Redis (compare-and-set on the version this replica has seen). Another replica's change
    // in between: read it, apply it, and run the change again on it.
    private AdminChange AdministerShared(SharedOverlayStore shared, Func<ModelRegistry, RuntimeOverlay, AdminChange> change, AdminChange result)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (shared.CompareAndSet(_sharedMark, result.Overlay!) is { } written)
            {
                _sharedMark = written;
                SaveLocalCopy(result.Overlay!);
                return result;
            }

            if (attempt == 4)
            {
                throw new SharedStateUnavailableException("The shared overlay in Redis kept changing under this write (5 attempts); retry.");
            }

            if (SynchronizeLocked(shared))
            {
                Publish(Compose());
            }

            result = change(_administered, _overlay);
            if (result.Error is not null || result.Overlay is null)
            {
                return result;
            }
        }
    }

    // Under _writeLock. Returns whether _overlay changed (the caller publishes).
    private bool SynchronizeLocked(SharedOverlayStore shared)
    {
        var document = shared.Read();
        if (document.Mark.Version == 0)
        {
            if (shared.CompareAndSet(SharedOverlayMark.None, _overlay) is { } seeded)
            {
                _sharedMark = seeded;
                SharedStateLog.OverlaySeeded(_logger, _overlay.Endpoints.Count, _overlay.Keys.Count);
                return false;
            }

            document = shared.Read(); // another replica seeded it first
        }

        if (document.Mark == _sharedMark)
        {
            return false;
        }

        // The mark is taken even for a refused document, so an admin write can replace it (compare-and-set on it).
        _sharedMark = document.Mark;
        if (document.Overlay is null)
        {
            SharedStateLog.OverlayRefused(_logger, document.Mark.Version, document.Error ?? "no document");
            return false;
        }

        _overlay = DefaultOverrideScope.Review(document.Overlay, _configured, _store, _logger);
        SaveLocalCopy(_overlay);
        SharedStateLog.OverlayApplied(_logger, document.Mark.Version);
        return true;
    }

    private void SaveLocalCopy(RuntimeOverlay overlay)
    {
        try
        {
            _store.Save(overlay);
        }
        catch (RuntimeStateNotSavedException e)
        {
            SharedStateLog.LocalCopyNotSaved(_logger, e.Message);
        }
    }

    /// <summary>Changes the observed conditions; swaps the state only when they changed.</summary>
    internal void UpdateConditions(Func<EndpointConditions, EndpointConditions> change)
    {
        lock (_writeLock)
        {
            var next = change(_conditions);
            if (ReferenceEquals(next, _conditions))
            {
                return;
            }

            _conditions = next;
            Publish((_administered, State(next.ApplyTo(_administered))));
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _optionsSubscription?.Dispose();
        _proxySubscription?.Dispose();
        if (_applied is not null)
        {
            _applied.Applied -= OnProxyConfigApplied;
        }
    }

    private void WarnOfPlainKeys(ModelRoutingOptions options)
    {
        foreach (var key in options.Keys ?? [])
        {
            if (!string.IsNullOrEmpty(key.Key))
            {
                Log.PlainKey(_logger, LogValue.Sanitize(key.Id));
            }
        }
    }

    private (ModelRegistry Administered, RoutingState State) Compose()
    {
        var administered = _overlay.ApplyTo(_configured, _clusterIds, item => Log.OverlayItemSkipped(_logger, item));
        return (administered, State(_conditions.ApplyTo(administered)));
    }

    private RoutingState State(ModelRegistry effective) => new(
        new ModelRouter(effective), _optionsInForce, ClientKeySet.Build(_optionsInForce.Keys ?? [], _overlay.Keys, effective), _overlay.Endpoints.Select(e => e.Definition));

    private void Publish((ModelRegistry Administered, RoutingState State) next)
    {
        Volatile.Write(ref _administered, next.Administered);
        Volatile.Write(ref _current, next.State);
        var changed = Interlocked.Exchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        changed.TrySetResult();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Model registry loaded with {Count} endpoints.", EventName = "RegistryLoaded")]
        public static partial void Loaded(ILogger logger, int count);

        [LoggerMessage(2, LogLevel.Information, "Model registry reloaded with {Count} endpoints.", EventName = "RegistryReloaded")]
        public static partial void Reloaded(ILogger logger, int count);

        [LoggerMessage(3, LogLevel.Error, "Invalid ModelRouting configuration; the last good registry stays in force: {Errors}", EventName = "ReloadRejected")]
        public static partial void ReloadRejected(ILogger logger, string errors);

        [LoggerMessage(4, LogLevel.Warning, "A runtime change no longer applies over the configuration and is left out (it stays in the state file): {Item}", EventName = "OverlayItemSkipped")]
        public static partial void OverlayItemSkipped(ILogger logger, string item);

        [LoggerMessage(5, LogLevel.Warning, "Client key '{Id}' is configured with its secret (Key); configure its SHA-256 instead (KeyHash), so the configuration does not hold the secret.", EventName = "PlainClientKey")]
        public static partial void PlainKey(ILogger logger, string id);
    }
}

/// <summary>The outcome of an admin change: the next overlay (and conditions), or an error naming the field.</summary>
internal sealed record AdminChange(RuntimeOverlay? Overlay, string? Error = null, string? Field = null, int Status = 400)
{
    /// <summary>Gets a change to the observed conditions made in the same swap.</summary>
    public Func<EndpointConditions, EndpointConditions>? Conditions { get; init; }

    public static AdminChange Fail(string error, string? field, int status = 400) => new(null, error, field, status);
}
