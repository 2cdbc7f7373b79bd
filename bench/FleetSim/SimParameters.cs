using System.Globalization;

namespace FleetSim;

/// <summary>
/// The simulator's model parameters (README "Fleet simulator" describes the model). Every one can be set on the
/// command line as <c>--Name value</c>; the defaults are those of the benchmark.
/// </summary>
internal sealed class SimParameters
{
    /// <summary>Characters per simulated token (prompt text is not tokenized).</summary>
    public int CharsPerToken { get; set; } = 4;

    /// <summary>Tokens per prefix-cache block (vLLM's default block size).</summary>
    public int BlockTokens { get; set; } = 16;

    /// <summary>Most sequences running at once per replica (vLLM's max_num_seqs).</summary>
    public int BatchLimit { get; set; } = 16;

    /// <summary>KV-cache capacity per replica in tokens: a request is admitted only when its prompt and output fit.</summary>
    public int KvCapacityTokens { get; set; } = 65536;

    /// <summary>Prefix-cache capacity per replica in tokens (least recently used blocks are evicted).</summary>
    public int PrefixCacheTokens { get; set; } = 8192;

    /// <summary>Prefill time per uncached prompt token (ms); prefills run one at a time per replica.</summary>
    public double PrefillMsPerToken { get; set; } = 0.1;

    /// <summary>Fixed prefill time per request (ms).</summary>
    public double PrefillBaseMs { get; set; } = 2;

    /// <summary>Time per output token at batch size 1 (ms).</summary>
    public double DecodeMsPerToken { get; set; } = 15;

    /// <summary>Added time per output token for each running sequence (ms).</summary>
    public double DecodeMsPerRunning { get; set; } = 1;

    /// <summary>Adapters that can be loaded (and in one batch) at once per replica (vLLM's max_loras).</summary>
    public int MaxLoras { get; set; } = 8;

    /// <summary>Time to load an adapter that is not loaded (ms); it holds the replica's prefill engine.</summary>
    public double AdapterLoadMs { get; set; } = 200;

    /// <summary>The base model's name; any other requested model is an adapter.</summary>
    public string BaseModel { get; set; } = "sim-base";

    /// <summary>Seeds the generated text.</summary>
    public int Seed { get; set; } = 1;

    public static SimParameters FromArgs(string[] args, out List<int> ports)
    {
        var parameters = new SimParameters();
        ports = [];
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var name = args[i].TrimStart('-');
            var value = args[i + 1];
            if (name == "ports")
            {
                ports.AddRange(value.Split(',').Select(p => int.Parse(p, CultureInfo.InvariantCulture)));
                continue;
            }

            var property = typeof(SimParameters).GetProperty(name) ?? throw new ArgumentException($"unknown parameter --{name}");
            property.SetValue(parameters, Convert.ChangeType(value, property.PropertyType, CultureInfo.InvariantCulture));
        }

        return parameters;
    }
}
