using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelRouting.Backends;
using ModelRouting.Configuration;
using ModelRouting.Health;
using ModelRouting.Registry;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;
using ModelRouting.Logging;

namespace ModelRouting.Adapters;

/// <summary>
/// Keeps runtime adapters loaded on vLLM (an endpoint registered through the admin API with a <c>SourcePath</c> on a
/// cluster with the metadata <c>ModelRouting.Backend: vllm</c>). At every cluster's
/// <c>ModelRouting:Backends:&lt;cluster&gt;:AdapterReconcileInterval</c> (default 10 s), and at once when an adapter is
/// registered, each destination's <c>GET /v1/models</c> is read and the adapter loaded
/// (<c>POST /v1/load_lora_adapter</c>) wherever it is not listed: a destination that restarted, one added to the
/// cluster, or every destination after a gateway restart (the state file lists the endpoint). A destination whose
/// list cannot be read (not vLLM-shaped) keeps what the gateway last loaded there; one that cannot be reached
/// counts as not having the adapter.
/// </summary>
/// <remarks>
/// The outcome is an observed condition per endpoint: Ready while loaded on at least one destination (and
/// <see cref="AdapterPlacement"/> sends its requests only there), Error when every destination refused the load,
/// Loading otherwise, with the reason. Passes run one at a time; the request path reads only the swapped snapshot.
/// </remarks>
internal sealed partial class AdapterReconciler(
    ModelRegistrySource source,
    IProxyStateLookup proxy,
    BackendClient client,
    BackendCredentials backends,
    TimeProvider time,
    ILogger<AdapterReconciler> logger) : BackgroundService
{
    /// <summary>The timeout of one <c>GET /v1/models</c>.</summary>
    public static readonly TimeSpan ListTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The timeout of one load or unload (vLLM reads the adapter's weights meanwhile).</summary>
    public static readonly TimeSpan LoadTimeout = TimeSpan.FromSeconds(60);

    private static readonly TimeSpan s_minimumInterval = TimeSpan.FromMilliseconds(20);
    private static readonly FrozenSet<string> s_nowhere = FrozenSet<string>.Empty;

    private readonly SemaphoreSlim _wake = new(0, 1);
    private readonly ConcurrentDictionary<PlacementKey, Placement> _placements = new();
    private readonly ConcurrentDictionary<Task, bool> _inFlight = new();
    private readonly Dictionary<string, DateTimeOffset> _due = new(StringComparer.Ordinal);
    private long _attempts;
    private int _wakeAll;

    /// <summary>Returns a new attempt number (the newest attempt of an endpoint decides its state).</summary>
    public long NextAttempt() => Interlocked.Increment(ref _attempts);

    /// <summary>Asks for a pass over every cluster now (or right after the running one).</summary>
    public void Wake()
    {
        Volatile.Write(ref _wakeAll, 1);
        try
        {
            _wake.Release();
        }
        catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException)
        {
        }
    }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        // Before requests are served: runtime adapters from the state file read as Loading until a pass finds them.
        Track(Targets());
        return base.StartAsync(cancellationToken);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);

        // Loads in flight were cancelled with the stopping token; let them finish unwinding.
        await Task.WhenAll(_inFlight.Keys).WaitAsync(cancellationToken);
    }

    public override void Dispose()
    {
        base.Dispose();
        _wake.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                wait = await ReconcileAsync(Interlocked.Exchange(ref _wakeAll, 0) == 1, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                Log.PassFailed(logger, e);
                wait = BackendOptions.DefaultAdapterReconcileInterval;
            }

            try
            {
                await _wake.WaitAsync(wait, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Runs one pass over the clusters that are due (all with <paramref name="all"/>): reads every destination's
    /// list and starts the loads that are missing (not awaited: a slow load holds up neither the pass nor the other
    /// destinations); returns the time until the next cluster is due.
    /// </summary>
    internal async Task<TimeSpan> ReconcileAsync(bool all, CancellationToken cancellationToken)
    {
        var targets = Targets();
        Track(targets);
        var loads = source.Conditions.AdapterLoads;
        var now = time.GetUtcNow();
        var next = BackendOptions.DefaultAdapterReconcileInterval;
        var checks = new List<Task>();
        var due = new List<(ClusterState Cluster, List<Target> Targets)>();
        foreach (var group in targets.GroupBy(t => t.Cluster, StringComparer.Ordinal))
        {
            var interval = backends.AdapterReconcileInterval(group.Key);
            interval = interval < s_minimumInterval ? s_minimumInterval : interval;
            if (!all && _due.TryGetValue(group.Key, out var at) && at > now)
            {
                next = Min(next, at - now);
                continue;
            }

            _due[group.Key] = now + interval;
            next = Min(next, interval);
            var tracked = group
                .Select(t => loads.TryGetValue(t.Id, out var state) ? t with { Attempt = state.Attempt } : null)
                .OfType<Target>()
                .ToList();
            if (tracked.Count > 0 && proxy.TryGetCluster(group.Key, out var cluster))
            {
                due.Add((cluster, tracked));
                checks.AddRange(cluster.Destinations.Values.Select(d => CheckDestinationAsync(cluster, d, tracked, cancellationToken)));
            }
        }

        foreach (var stale in _due.Keys.Where(c => !targets.Any(t => t.Cluster == c)).ToList())
        {
            _due.Remove(stale);
        }

        await Task.WhenAll(checks);

        // Also drops destinations removed from the cluster and reports a cluster without destinations.
        foreach (var (cluster, tracked) in due)
        {
            foreach (var target in tracked)
            {
                Publish(target, cluster);
            }
        }

        var live = source.Conditions.AdapterLoads;
        foreach (var key in _placements.Keys.Where(k => !live.TryGetValue(k.Id, out var s) || s.Attempt != k.Attempt).ToList())
        {
            _placements.TryRemove(key, out _);
        }

        return next;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    // Runtime adapter endpoints with a source path on a vLLM cluster, as administered now.
    private List<Target> Targets()
    {
        var overlay = source.Overlay;
        var administered = source.Administered;
        var targets = new List<Target>();
        foreach (var entry in overlay.Endpoints)
        {
            if (entry.SourcePath is { } path
                && entry.Definition.Id is { } id
                && administered.TryGet(id, out var endpoint)
                && endpoint.HasAdapter
                && proxy.TryGetCluster(endpoint.Cluster, out var cluster)
                && VllmAdapterManager.IsVllm(cluster))
            {
                targets.Add(new Target(id, endpoint.UpstreamModel, path, endpoint.Cluster, 0));
            }
        }

        return targets;
    }

    // Targets without a load state (after a gateway restart) read as Loading until a pass finds them loaded.
    private void Track(List<Target> targets)
    {
        if (targets.Count == 0)
        {
            return;
        }

        source.UpdateConditions(c =>
        {
            foreach (var target in targets)
            {
                // Checked under the write lock: an endpoint unregistered meanwhile is not brought back.
                if (!c.AdapterLoads.ContainsKey(target.Id) && source.Overlay.FindEndpoint(target.Id)?.SourcePath is not null)
                {
                    c = c.WithAdapterLoad(target.Id, new AdapterLoadState(
                        EndpointStatus.Loading, $"adapter '{target.Upstream}' is not loaded on any destination of cluster '{target.Cluster}' yet", NextAttempt(), s_nowhere));
                }
            }

            return c;
        });
    }

    private async Task CheckDestinationAsync(ClusterState cluster, DestinationState destination, List<Target> targets, CancellationToken cancellationToken)
    {
        var address = destination.Model.Config.Address;
        HashSet<string>? listed = null;
        string? unreachable = null;
        try
        {
            using var response = await client.SendAsync(cluster, destination, HttpMethod.Get, "v1/models", null, ListTimeout, cancellationToken);
            listed = response.IsSuccessStatusCode ? ModelIds(await response.Content.ReadAsByteArrayAsync(cancellationToken)) : null;
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException)
        {
            unreachable = e.Message;
        }

        foreach (var target in targets)
        {
            var key = new PlacementKey(target.Id, target.Attempt, address);
            var known = _placements.TryGetValue(key, out var placement) ? placement : default;
            if (known.Kind == PlacementKind.Loading)
            {
                continue;
            }

            if (unreachable is not null)
            {
                SetPlacement(key, new Placement(PlacementKind.Failed, $"{address} is unreachable: {unreachable}"));
            }
            else if (listed?.Contains(target.Upstream) == true || (listed is null && known.Kind == PlacementKind.Loaded))
            {
                SetPlacement(key, new Placement(PlacementKind.Loaded, null));
            }
            else
            {
                if (known.Kind == PlacementKind.Loaded)
                {
                    Log.Vanished(logger, LogValue.Sanitize(target.Upstream), address, cluster.ClusterId);
                }

                _placements[key] = new Placement(PlacementKind.Loading, $"{address}: loading");
                var load = LoadAsync(cluster, destination, target, key, cancellationToken);
                _inFlight[load] = true;
                _ = load.ContinueWith(t => _inFlight.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            Publish(target, cluster);
        }
    }

    private async Task LoadAsync(ClusterState cluster, DestinationState destination, Target target, PlacementKey key, CancellationToken cancellationToken)
    {
        var address = key.Address;
        Placement outcome;
        try
        {
            using var content = JsonContent.Create(new LoadRequest(target.Upstream, target.SourcePath));
            using var response = await client.SendAsync(cluster, destination, HttpMethod.Post, "v1/load_lora_adapter", content, LoadTimeout, cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                Log.Loaded(logger, LogValue.Sanitize(target.Upstream), address, cluster.ClusterId);
                outcome = new Placement(PlacementKind.Loaded, null);
                if (!Targets().Any(t => t.Cluster == target.Cluster && t.Upstream == target.Upstream))
                {
                    // Unregistered while it was loading: the admin API's unload may have come first.
                    using var unload = JsonContent.Create(new UnloadRequest(target.Upstream));
                    using var unloaded = await client.SendAsync(cluster, destination, HttpMethod.Post, "v1/unload_lora_adapter", unload, LoadTimeout, cancellationToken);
                    return;
                }
            }
            else
            {
                var text = await response.Content.ReadAsStringAsync(cancellationToken);
                outcome = new Placement(PlacementKind.Refused, $"{address} answered {(int)response.StatusCode}: {LogValue.Sanitize(text)}");
            }
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException)
        {
            outcome = new Placement(PlacementKind.Failed, $"{address}: {e.Message}");
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _placements.TryRemove(key, out _);
            return;
        }
        catch (Exception e)
        {
            outcome = new Placement(PlacementKind.Failed, $"{address}: {e.GetType().Name}: {e.Message}");
        }

        SetPlacement(key, outcome);
        Publish(target, cluster);
    }

    private void SetPlacement(PlacementKey key, Placement placement)
    {
        var before = _placements.TryGetValue(key, out var known) ? known : default;
        _placements[key] = placement;
        if (placement.Failure is not null && placement.Failure != before.Failure)
        {
            Log.LoadFailed(logger, LogValue.Sanitize(key.Id), key.Address, placement.Failure);
        }
    }

    // Turns the destinations' placements into the endpoint's load state; only the newest attempt's is written.
    private void Publish(Target target, ClusterState cluster)
    {
        var destinations = cluster.Destinations.Values.Select(d => d.Model.Config.Address).Distinct(StringComparer.Ordinal).ToList();
        var loadedOn = new HashSet<string>(StringComparer.Ordinal);
        var failures = new List<string>();
        var refused = 0;
        foreach (var address in destinations)
        {
            var placement = _placements.TryGetValue(new PlacementKey(target.Id, target.Attempt, address), out var p) ? p : default;
            switch (placement.Kind)
            {
                case PlacementKind.Loaded:
                    loadedOn.Add(address);
                    break;
                case PlacementKind.Refused:
                    refused++;
                    failures.Add(placement.Failure!);
                    break;
                default:
                    failures.Add(placement.Failure ?? $"{address}: not checked yet");
                    break;
            }
        }

        AdapterLoadState state;
        if (loadedOn.Count > 0)
        {
            state = new(EndpointStatus.Ready, $"loaded on {loadedOn.Count} of {destinations.Count} destinations", target.Attempt, loadedOn.ToFrozenSet(StringComparer.Ordinal));
        }
        else if (destinations.Count > 0 && refused == destinations.Count)
        {
            state = new(EndpointStatus.Error, $"loading adapter '{target.Upstream}' failed: {string.Join("; ", failures)}", target.Attempt, s_nowhere);
        }
        else
        {
            var why = destinations.Count == 0 ? "the cluster has no destinations" : string.Join("; ", failures);
            state = new(EndpointStatus.Loading, $"adapter '{target.Upstream}' is not loaded on any destination of cluster '{target.Cluster}': {why}", target.Attempt, s_nowhere);
        }

        var lost = false;
        source.UpdateConditions(c =>
        {
            if (!c.AdapterLoads.TryGetValue(target.Id, out var current) || current.Attempt != target.Attempt || current.SameAs(state))
            {
                return c;
            }

            lost = current.Status == EndpointStatus.Ready && state.Status != EndpointStatus.Ready;
            return c.WithAdapterLoad(target.Id, state);
        });
        if (lost)
        {
            Log.Unavailable(logger, LogValue.Sanitize(target.Id), target.Cluster, LogValue.Sanitize(state.Reason));
        }
    }

    // vLLM's GET /v1/models: {"data":[{"id":…},…]}; null when the answer has another shape.
    private static HashSet<string>? ModelIds(byte[] body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("data", out var data)
                || data.ValueKind != JsonValueKind.Array)
            {
                return null;
            }

            var ids = new HashSet<string>(StringComparer.Ordinal);
            foreach (var model in data.EnumerateArray())
            {
                if (model.ValueKind == JsonValueKind.Object && model.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
                {
                    ids.Add(id.GetString()!);
                }
            }

            return ids;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private sealed record Target(string Id, string Upstream, string SourcePath, string Cluster, long Attempt);

    private readonly record struct PlacementKey(string Id, long Attempt, string Address);

    // What the gateway knows of an adapter on one destination (default: nothing yet).
    private readonly record struct Placement(PlacementKind Kind, string? Failure);

    private enum PlacementKind
    {
        Unknown,
        Loading,
        Loaded,
        Refused,
        Failed,
    }

    private sealed record UnloadRequest(
        [property: System.Text.Json.Serialization.JsonPropertyName("lora_name")] string LoraName);

    private sealed record LoadRequest(
        [property: System.Text.Json.Serialization.JsonPropertyName("lora_name")] string LoraName,
        [property: System.Text.Json.Serialization.JsonPropertyName("lora_path")] string LoraPath);

    private static partial class Log
    {
        [LoggerMessage(50, LogLevel.Information, "Loaded adapter '{Adapter}' on {Destination} (cluster '{Cluster}').", EventName = "AdapterLoaded")]
        public static partial void Loaded(ILogger logger, string adapter, string destination, string cluster);

        [LoggerMessage(51, LogLevel.Warning, "Adapter endpoint '{Endpoint}' is not loaded on {Destination}: {Reason}", EventName = "AdapterLoadFailed")]
        public static partial void LoadFailed(ILogger logger, string endpoint, string destination, string reason);

        [LoggerMessage(53, LogLevel.Warning, "Adapter '{Adapter}' is no longer listed by {Destination} (cluster '{Cluster}'), which probably restarted; loading it again.", EventName = "AdapterVanished")]
        public static partial void Vanished(ILogger logger, string adapter, string destination, string cluster);

        [LoggerMessage(54, LogLevel.Warning, "Adapter endpoint '{Endpoint}' is loaded on no destination of cluster '{Cluster}' and is unavailable: {Reason}", EventName = "AdapterUnavailable")]
        public static partial void Unavailable(ILogger logger, string endpoint, string cluster, string reason);

        [LoggerMessage(55, LogLevel.Error, "An adapter reconciliation pass failed; retrying at the default interval.", EventName = "AdapterReconcileFailed")]
        public static partial void PassFailed(ILogger logger, Exception exception);
    }
}
