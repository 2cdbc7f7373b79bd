using System.Globalization;
using System.Text;

namespace FleetSim;

/// <summary>A request as the replica schedules it.</summary>
internal sealed class Job(int promptTokens, IReadOnlyList<ulong> blocks, string? adapter, int maxTokens)
{
    public int PromptTokens { get; } = promptTokens;

    public IReadOnlyList<ulong> Blocks { get; } = blocks;

    public string? Adapter { get; } = adapter;

    public int MaxTokens { get; } = maxTokens;

    public int KvTokens => PromptTokens + MaxTokens;

    public TaskCompletionSource Admitted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// One simulated vLLM replica: a FIFO waiting queue; at most <see cref="SimParameters.BatchLimit"/> running
/// sequences whose prompts and outputs fit the KV cache and whose adapters number at most
/// <see cref="SimParameters.MaxLoras"/> (a request whose adapter would exceed it waits while later ones pass,
/// as vLLM's scheduler does); one prefill at a time, costing the uncached prompt tokens plus any adapter load;
/// then one output token per <c>DecodeMsPerToken + DecodeMsPerRunning × running</c> ms.
/// </summary>
internal sealed class Replica(int id, SimParameters parameters) : IDisposable
{
    private readonly object _lock = new();
    private readonly LinkedList<Job> _waiting = new();
    private readonly List<Job> _running = [];
    private readonly PrefixCache _cache = new(Math.Max(1, parameters.PrefixCacheTokens / parameters.BlockTokens));
    private readonly List<string> _loaded = [];
    private readonly SemaphoreSlim _engine = new(1, 1);
    private long _kvUsed;
    private long _requests;
    private long _promptTokens;
    private long _cachedTokens;
    private long _adapterLoads;
    private double _loraInfoTime;

    public int Id { get; } = id;

    public void Dispose() => _engine.Dispose();

    /// <summary>Runs <paramref name="job"/>: <paramref name="onToken"/> is called for each output token, the first after the prefill.</summary>
    public async Task RunAsync(Job job, Func<int, Task> onToken, CancellationToken cancellationToken)
    {
        LinkedListNode<Job> node;
        lock (_lock)
        {
            node = _waiting.AddLast(job);
            Schedule();
        }

        try
        {
            await job.Admitted.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            lock (_lock)
            {
                if (node.List is not null)
                {
                    _waiting.Remove(node);
                    throw;
                }
            }

            Finish(job);
            throw;
        }

        try
        {
            await _engine.WaitAsync(cancellationToken);
            try
            {
                double delay;
                lock (_lock)
                {
                    var cached = Math.Min(job.PromptTokens, _cache.Match(job.Blocks) * parameters.BlockTokens);
                    delay = parameters.PrefillBaseMs + ((job.PromptTokens - cached) * parameters.PrefillMsPerToken);
                    if (job.Adapter is not null && LoadAdapter(job.Adapter))
                    {
                        delay += parameters.AdapterLoadMs;
                    }

                    _requests++;
                    _promptTokens += job.PromptTokens;
                    _cachedTokens += cached;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(delay), cancellationToken);
                lock (_lock)
                {
                    _cache.Insert(job.Blocks);
                }
            }
            finally
            {
                _engine.Release();
            }

            for (var i = 0; i < job.MaxTokens; i++)
            {
                await onToken(i);
                if (i + 1 < job.MaxTokens)
                {
                    int running;
                    lock (_lock)
                    {
                        running = _running.Count;
                    }

                    await Task.Delay(TimeSpan.FromMilliseconds(parameters.DecodeMsPerToken + (parameters.DecodeMsPerRunning * running)), cancellationToken);
                }
            }
        }
        finally
        {
            Finish(job);
        }
    }

    /// <summary>The replica's Prometheus page: vLLM's names (and a few others a real page has), plus the simulator's counters.</summary>
    public string Metrics()
    {
        var text = new StringBuilder(2048);
        lock (_lock)
        {
            var model = parameters.BaseModel;
            Gauge(text, "vllm:num_requests_running", "Number of requests in model execution batches.", $"model_name=\"{model}\"", _running.Count);
            Gauge(text, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", $"model_name=\"{model}\"", _waiting.Count);
            Gauge(text, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", $"model_name=\"{model}\"", (double)_kvUsed / parameters.KvCapacityTokens);
            var running = string.Join(',', _running.Select(j => j.Adapter).OfType<string>().Distinct());
            var waiting = string.Join(',', _waiting.Select(j => j.Adapter).OfType<string>().Distinct());
            _loraInfoTime = Math.Max(_loraInfoTime + 0.001, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
            Gauge(text, "vllm:lora_requests_info", "Running stats on lora requests.",
                $"max_lora=\"{parameters.MaxLoras}\",running_lora_adapters=\"{running}\",waiting_lora_adapters=\"{waiting}\"", _loraInfoTime);
            text.Append("# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.\n# TYPE vllm:time_to_first_token_seconds histogram\n");
            text.Append(CultureInfo.InvariantCulture, $"vllm:time_to_first_token_seconds_bucket{{le=\"+Inf\",model_name=\"{model}\"}} {_requests}\n");
            Counter(text, "sim:requests_total", _requests);
            Counter(text, "sim:prompt_tokens_total", _promptTokens);
            Counter(text, "sim:prefix_cached_tokens_total", _cachedTokens);
            Counter(text, "sim:adapter_loads_total", _adapterLoads);
        }

        return text.ToString();
    }

    private static void Gauge(StringBuilder text, string name, string help, string labels, double value) =>
        text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{{labels}}} {value.ToString("R", CultureInfo.InvariantCulture)}\n");

    private static void Counter(StringBuilder text, string name, long value) =>
        text.Append(CultureInfo.InvariantCulture, $"# TYPE {name} counter\n{name} {value}\n");

    private void Finish(Job job)
    {
        lock (_lock)
        {
            if (_running.Remove(job))
            {
                _kvUsed -= job.KvTokens;
            }

            Schedule();
        }
    }

    // Admits waiting requests in arrival order while the batch, the KV cache and the adapter slots allow.
    private void Schedule()
    {
        var node = _waiting.First;
        while (node is not null && _running.Count < parameters.BatchLimit)
        {
            var next = node.Next;
            var job = node.Value;
            if (_kvUsed + job.KvTokens > parameters.KvCapacityTokens && _running.Count > 0)
            {
                break;
            }

            if (job.Adapter is not null && !_running.Any(r => r.Adapter == job.Adapter)
                && _running.Select(r => r.Adapter).OfType<string>().Distinct().Count() >= parameters.MaxLoras)
            {
                node = next;
                continue;
            }

            _waiting.Remove(node);
            _running.Add(job);
            _kvUsed += job.KvTokens;
            job.Admitted.TrySetResult();
            node = next;
        }
    }

    // Makes the adapter most recently used; true when it had to be loaded (evicting the least recently used one
    // no running request uses).
    private bool LoadAdapter(string adapter)
    {
        var at = _loaded.IndexOf(adapter);
        if (at >= 0)
        {
            _loaded.RemoveAt(at);
            _loaded.Add(adapter);
            return false;
        }

        if (_loaded.Count >= parameters.MaxLoras)
        {
            var victim = _loaded.FindIndex(a => !_running.Any(r => r.Adapter == a));
            _loaded.RemoveAt(victim < 0 ? 0 : victim);
        }

        _loaded.Add(adapter);
        _adapterLoads++;
        return true;
    }
}
