using System.Text.Json;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Backends;
using ModelRouting.Configuration;
using ModelRouting.Health;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Discovery;

/// <summary>
/// Polls <c>GET /v1/models</c> on the destinations of clusters with the metadata
/// <c>ModelRouting.Discovery: true</c> (vLLM's shape: <c>id</c>, <c>parent</c>, <c>max_model_len</c>). An adapter
/// endpoint reads as Loading until a backend lists its upstream model; listed models give endpoints their
/// context length (an adapter, reported with null, inherits its parent's). Each destination's answer is
/// cached with a TTL, so a destination that stops answering is forgotten only when its answer expires. Runs
/// in the background: the request path only reads the swapped snapshot.
/// </summary>
internal sealed partial class ModelDiscoveryService(
    ModelRegistrySource source,
    IProxyStateLookup proxy,
    IOptionsMonitor<ModelRoutingOptions> options,
    BackendClient client,
    ILogger<ModelDiscoveryService> logger) : BackgroundService
{
    /// <summary>The cluster metadata key that turns discovery on.</summary>
    public const string DiscoveryMetadataKey = "ModelRouting.Discovery";

    private readonly MemoryCache _cache = new(new MemoryCacheOptions());

    public override void Dispose()
    {
        base.Dispose();
        _cache.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            var settings = options.CurrentValue.Discovery;
            try
            {
                await PollAsync(settings, stoppingToken);
                await Task.Delay(settings.Interval > TimeSpan.FromMilliseconds(20) ? settings.Interval : TimeSpan.FromMilliseconds(20), stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    internal async Task PollAsync(DiscoveryOptions settings, CancellationToken cancellationToken)
    {
        var clusters = proxy.GetClusters()
            .Where(c => c.Model.Config.Metadata?.TryGetValue(DiscoveryMetadataKey, out var on) == true && string.Equals(on, "true", StringComparison.OrdinalIgnoreCase))
            .ToList();
        var results = new Dictionary<string, DiscoveredModels?>(StringComparer.Ordinal);
        foreach (var cluster in clusters)
        {
            var models = new List<(string, string?, int?)>();
            var anyAnswer = false;
            await Task.WhenAll(cluster.Destinations.Values.Select(d => RefreshAsync(cluster, d, settings, cancellationToken)));
            foreach (var destination in cluster.Destinations.Values)
            {
                if (_cache.TryGetValue(destination.Model.Config.Address, out List<(string, string?, int?)>? listed) && listed is not null)
                {
                    anyAnswer = true;
                    models.AddRange(listed);
                }
            }

            // No (unexpired) answer at all: nothing is known, so discovery does not mark anything Loading.
            results[cluster.ClusterId] = anyAnswer ? new DiscoveredModels(models) : null;
        }

        source.UpdateConditions(c =>
        {
            var next = c;
            foreach (var stale in c.Discovered.Keys.Where(k => !results.ContainsKey(k)))
            {
                next = next.WithDiscovered(stale, null);
            }

            foreach (var (cluster, models) in results)
            {
                next = next.WithDiscovered(cluster, models);
            }

            return next;
        });
    }

    private async Task RefreshAsync(ClusterState cluster, DestinationState destination, DiscoveryOptions settings, CancellationToken cancellationToken)
    {
        var address = destination.Model.Config.Address;
        try
        {
            using var response = await client.SendAsync(cluster, destination, HttpMethod.Get, "v1/models", null, settings.Timeout, cancellationToken);
            response.EnsureSuccessStatusCode();
            using var document = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(cancellationToken));
            var listed = new List<(string, string?, int?)>();
            foreach (var model in document.RootElement.GetProperty("data").EnumerateArray())
            {
                var id = model.GetProperty("id").GetString();
                if (id is null)
                {
                    continue;
                }

                var parent = model.TryGetProperty("parent", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
                int? length = model.TryGetProperty("max_model_len", out var l) && l.ValueKind == JsonValueKind.Number && l.TryGetInt32(out var n) ? n : null;
                listed.Add((id, parent, length));
            }

            _cache.Set(address, listed, settings.Ttl);
        }
        catch (Exception e) when (e is HttpRequestException or TimeoutException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            Log.PollFailed(logger, address, e.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(60, LogLevel.Debug, "Discovery: GET /v1/models on {Address} failed: {Reason}", EventName = "DiscoveryFailed")]
        public static partial void PollFailed(ILogger logger, string address, string reason);
    }
}
