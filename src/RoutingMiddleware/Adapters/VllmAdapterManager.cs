using System.Collections.Concurrent;
using System.Net.Http.Json;
using Microsoft.Extensions.Logging;
using ModelRouting.Configuration;
using ModelRouting.Health;
using ModelRouting.Registry;
using Yarp.ReverseProxy;

namespace ModelRouting.Adapters;

/// <summary>
/// Loads and unloads LoRA adapters on vLLM backends (clusters with the metadata
/// <c>ModelRouting.Backend: vllm</c>): <c>POST /v1/load_lora_adapter {"lora_name","lora_path"}</c> on every
/// destination, then the endpoint is Ready, or Error if any destination refused;
/// <c>POST /v1/unload_lora_adapter {"lora_name"}</c> when it is unregistered. Runs in the background.
/// </summary>
internal sealed partial class VllmAdapterManager(
    ModelRegistrySource source,
    IProxyStateLookup proxy,
    ILogger<VllmAdapterManager> logger) : IAsyncDisposable
{
    /// <summary>The cluster metadata key naming the backend kind.</summary>
    public const string BackendMetadataKey = "ModelRouting.Backend";

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2) }) { Timeout = s_timeout };
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, bool> _running = new();
    private long _attempts;

    public long NextAttempt() => Interlocked.Increment(ref _attempts);

    /// <summary>Returns whether <paramref name="clusterId"/> is marked as a vLLM cluster.</summary>
    public bool IsVllm(string clusterId) =>
        proxy.TryGetCluster(clusterId, out var cluster)
        && cluster.Model.Config.Metadata is { } metadata
        && metadata.TryGetValue(BackendMetadataKey, out var backend)
        && string.Equals(backend, "vllm", StringComparison.OrdinalIgnoreCase);

    /// <summary>Loads <paramref name="loraName"/> on every destination; the endpoint is already marked Loading with <paramref name="attempt"/>.</summary>
    public void StartLoad(string endpointId, string loraName, string loraPath, string clusterId, long attempt) =>
        Track(LoadAsync(endpointId, loraName, loraPath, clusterId, attempt));

    /// <summary>Unloads <paramref name="loraName"/> from every destination; failures are logged.</summary>
    public void StartUnload(string loraName, string clusterId) => Track(UnloadAsync(loraName, clusterId));

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        try
        {
            await Task.WhenAll(_running.Keys);
        }
        catch (OperationCanceledException)
        {
        }

        _http.Dispose();
        _stopping.Dispose();
    }

    private void Track(Task task)
    {
        _running[task] = true;
        _ = task.ContinueWith(t => _running.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task LoadAsync(string endpointId, string loraName, string loraPath, string clusterId, long attempt)
    {
        await Task.Yield();
        var failures = await CallEveryDestinationAsync(clusterId, "v1/load_lora_adapter", new LoadRequest(loraName, loraPath));
        AdapterLoadState? outcome = failures.Count == 0
            ? null
            : new AdapterLoadState(EndpointStatus.Error, $"loading adapter '{loraName}' failed: {string.Join("; ", failures)}", attempt);
        if (outcome is null)
        {
            Log.Loaded(logger, loraName, clusterId);
        }
        else
        {
            Log.LoadFailed(logger, loraName, clusterId, outcome.Reason);
        }

        // Only the newest attempt decides: a replaced or unregistered endpoint's stale result is dropped.
        source.UpdateConditions(c => c.AdapterLoads.TryGetValue(endpointId, out var current) && current.Attempt == attempt
            ? c.WithAdapterLoad(endpointId, outcome)
            : c);
    }

    private async Task UnloadAsync(string loraName, string clusterId)
    {
        await Task.Yield();
        var failures = await CallEveryDestinationAsync(clusterId, "v1/unload_lora_adapter", new UnloadRequest(loraName));
        if (failures.Count > 0)
        {
            Log.UnloadFailed(logger, loraName, clusterId, string.Join("; ", failures));
        }
    }

    private async Task<List<string>> CallEveryDestinationAsync<T>(string clusterId, string path, T body)
    {
        var failures = new List<string>();
        if (!proxy.TryGetCluster(clusterId, out var cluster))
        {
            failures.Add($"cluster '{clusterId}' is not configured");
            return failures;
        }

        var calls = cluster.Destinations.Values.Select(async destination =>
        {
            var address = destination.Model.Config.Address;
            try
            {
                using var response = await _http.PostAsJsonAsync(new Uri(new Uri(address.EndsWith('/') ? address : address + "/"), path), body, _stopping.Token);
                if (!response.IsSuccessStatusCode)
                {
                    var text = await response.Content.ReadAsStringAsync(_stopping.Token);
                    return $"{address} answered {(int)response.StatusCode}: {Truncate(text)}";
                }

                return null;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return $"{address}: {e.Message}";
            }
        });
        foreach (var failure in await Task.WhenAll(calls))
        {
            if (failure is not null)
            {
                failures.Add(failure);
            }
        }

        if (cluster.Destinations.IsEmpty)
        {
            failures.Add($"cluster '{clusterId}' has no destinations");
        }

        return failures;
    }

    private static string Truncate(string text) => text.Length <= 300 ? text : text[..300] + "…";

    private sealed record LoadRequest(
        [property: System.Text.Json.Serialization.JsonPropertyName("lora_name")] string LoraName,
        [property: System.Text.Json.Serialization.JsonPropertyName("lora_path")] string LoraPath);

    private sealed record UnloadRequest(
        [property: System.Text.Json.Serialization.JsonPropertyName("lora_name")] string LoraName);

    private static partial class Log
    {
        [LoggerMessage(50, LogLevel.Information, "Loaded adapter '{Adapter}' on every destination of cluster '{Cluster}'.", EventName = "AdapterLoaded")]
        public static partial void Loaded(ILogger logger, string adapter, string cluster);

        [LoggerMessage(51, LogLevel.Error, "Loading adapter '{Adapter}' on cluster '{Cluster}' failed: {Reason}", EventName = "AdapterLoadFailed")]
        public static partial void LoadFailed(ILogger logger, string adapter, string cluster, string reason);

        [LoggerMessage(52, LogLevel.Warning, "Unloading adapter '{Adapter}' from cluster '{Cluster}' failed: {Reason}", EventName = "AdapterUnloadFailed")]
        public static partial void UnloadFailed(ILogger logger, string adapter, string cluster, string reason);
    }
}
