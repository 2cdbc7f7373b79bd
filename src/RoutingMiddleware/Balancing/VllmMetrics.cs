namespace ModelRouting.Balancing;

/// <summary>The vLLM signals of one scrape of a destination's <c>/metrics</c>; immutable.</summary>
/// <param name="Waiting">Requests waiting (sum of <c>vllm:num_requests_waiting</c> over its samples).</param>
/// <param name="Running">Requests running (sum of <c>vllm:num_requests_running</c>).</param>
/// <param name="KvCacheUsage">KV-cache use in [0, 1] (<c>vllm:kv_cache_usage_perc</c>, else <c>vllm:gpu_cache_usage_perc</c>; the largest sample).</param>
/// <param name="Adapters">The running and waiting adapters of the newest <c>vllm:lora_requests_info</c> sample.</param>
internal sealed record VllmMetrics(double Waiting, double Running, double KvCacheUsage, IReadOnlyList<string> Adapters)
{
    /// <summary>Gets whether <paramref name="adapter"/> is running or waiting there.</summary>
    public bool HasAdapter(string adapter)
    {
        for (var i = 0; i < Adapters.Count; i++)
        {
            if (string.Equals(Adapters[i], adapter, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }
}
