using System.Collections.Concurrent;
using System.Net.Http.Json;
using Microsoft.Extensions.Logging;
using ModelRouting.Backends;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;
using ModelRouting.Logging;

namespace ModelRouting.Adapters;

/// <summary>
/// The admin API's view of LoRA adapters on vLLM backends (clusters with the metadata
/// <c>ModelRouting.Backend: vllm</c>): a registered adapter is loaded by <see cref="AdapterReconciler"/>
/// (<c>POST /v1/load_lora_adapter {"lora_name","lora_path"}</c> on every destination, and again wherever it goes
/// missing); <c>POST /v1/unload_lora_adapter {"lora_name"}</c> runs on every destination when it is unregistered.
/// Calls go through <see cref="BackendClient"/>, with the cluster's backend credential.
/// </summary>
internal sealed partial class VllmAdapterManager(
    IProxyStateLookup proxy,
    BackendClient client,
    AdapterReconciler reconciler,
    ILogger<VllmAdapterManager> logger) : IAsyncDisposable
{
    /// <summary>The cluster metadata key naming the backend kind.</summary>
    public const string BackendMetadataKey = "ModelRouting.Backend";

    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<Task, bool> _running = new();

    public long NextAttempt() => reconciler.NextAttempt();

    /// <summary>Returns whether <paramref name="clusterId"/> is marked as a vLLM cluster.</summary>
    public bool IsVllm(string clusterId) => proxy.TryGetCluster(clusterId, out var cluster) && IsVllm(cluster);

    /// <summary>Returns whether <paramref name="cluster"/> is marked as a vLLM cluster.</summary>
    public static bool IsVllm(ClusterState cluster) =>
        cluster.Model.Config.Metadata is { } metadata
        && metadata.TryGetValue(BackendMetadataKey, out var backend)
        && string.Equals(backend, "vllm", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Has <paramref name="loraName"/> loaded on every destination now; the endpoint is already marked Loading with
    /// <paramref name="attempt"/>, and the reconciler reads the source path from the runtime state.
    /// </summary>
    public void StartLoad(string endpointId, string loraName, string loraPath, string clusterId, long attempt)
    {
        Log.LoadRequested(logger, LogValue.Sanitize(endpointId), LogValue.Sanitize(loraName), clusterId, attempt, loraPath.Length);
        reconciler.Wake();
    }

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

        _stopping.Dispose();
    }

    private void Track(Task task)
    {
        _running[task] = true;
        _ = task.ContinueWith(t => _running.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task UnloadAsync(string loraName, string clusterId)
    {
        await Task.Yield();
        if (!proxy.TryGetCluster(clusterId, out var cluster))
        {
            Log.UnloadFailed(logger, LogValue.Sanitize(loraName), clusterId, "the cluster is not configured");
            return;
        }

        var calls = cluster.Destinations.Values.Select(async destination =>
        {
            var address = destination.Model.Config.Address;
            try
            {
                using var content = JsonContent.Create(new UnloadRequest(loraName));
                using var response = await client.SendAsync(
                    cluster, destination, HttpMethod.Post, "v1/unload_lora_adapter", content, AdapterReconciler.LoadTimeout, _stopping.Token);
                return response.IsSuccessStatusCode
                    ? null
                    : $"{address} answered {(int)response.StatusCode}: {LogValue.Sanitize(await response.Content.ReadAsStringAsync(_stopping.Token))}";
            }
            catch (Exception e) when (e is HttpRequestException or TimeoutException)
            {
                return $"{address}: {e.Message}";
            }
        });
        var failures = (await Task.WhenAll(calls)).OfType<string>().ToList();
        if (failures.Count > 0)
        {
            Log.UnloadFailed(logger, LogValue.Sanitize(loraName), clusterId, string.Join("; ", failures));
        }
    }

    private sealed record UnloadRequest(
        [property: System.Text.Json.Serialization.JsonPropertyName("lora_name")] string LoraName);

    private static partial class Log
    {
        [LoggerMessage(52, LogLevel.Warning, "Unloading adapter '{Adapter}' from cluster '{Cluster}' failed: {Reason}", EventName = "AdapterUnloadFailed")]
        public static partial void UnloadFailed(ILogger logger, string adapter, string cluster, string reason);

        [LoggerMessage(56, LogLevel.Debug, "Loading adapter '{Adapter}' for endpoint '{Endpoint}' on cluster '{Cluster}' (attempt {Attempt}, source path of {PathLength} characters).", EventName = "AdapterLoadRequested")]
        public static partial void LoadRequested(ILogger logger, string endpoint, string adapter, string cluster, long attempt, int pathLength);
    }
}
