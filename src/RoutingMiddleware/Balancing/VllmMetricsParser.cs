using System.Buffers.Text;
using System.Text;

namespace ModelRouting.Balancing;

/// <summary>What <see cref="VllmMetricsParser.Parse"/> made of a metrics page.</summary>
internal enum MetricsParseStatus
{
    /// <summary>At least one vLLM signal was read.</summary>
    Parsed,

    /// <summary>The page is readable but names none of vLLM's metrics (another server, or none loaded yet).</summary>
    NoVllmMetrics,

    /// <summary>A sample of a vLLM metric could not be read.</summary>
    Malformed,
}

/// <summary>
/// Reads the few vLLM samples the <c>ModelAware</c> policy uses from a Prometheus text exposition page. Every
/// other metric name, comment and blank line is skipped unread, so other servers' pages cost one scan.
/// </summary>
/// <remarks>
/// Hand-written rather than a Prometheus client library: the gateway needs five names out of pages of hundreds
/// of samples and no client library parses the exposition format (they write it).
/// </remarks>
internal static class VllmMetricsParser
{
    public static MetricsParseStatus Parse(ReadOnlySpan<byte> page, out VllmMetrics? metrics, out string? error)
    {
        metrics = null;
        error = null;
        double waiting = 0, running = 0, kv = -1, gpuKv = -1, newestInfo = double.NegativeInfinity;
        var found = false;
        string[]? adapters = null;
        var lineNumber = 0;
        while (!page.IsEmpty)
        {
            lineNumber++;
            var end = page.IndexOf((byte)'\n');
            var line = end < 0 ? page : page[..end];
            page = end < 0 ? [] : page[(end + 1)..];
            line = line.TrimEnd((byte)'\r');
            if (line.IsEmpty || line[0] == (byte)'#' || line[0] != (byte)'v' || !line.StartsWith("vllm:"u8))
            {
                continue;
            }

            var nameEnd = line.IndexOfAny((byte)'{', (byte)' ');
            if (nameEnd < 0)
            {
                continue;
            }

            var name = line[..nameEnd];
            var metric = name.SequenceEqual("vllm:num_requests_waiting"u8) ? 1
                : name.SequenceEqual("vllm:num_requests_running"u8) ? 2
                : name.SequenceEqual("vllm:kv_cache_usage_perc"u8) ? 3
                : name.SequenceEqual("vllm:gpu_cache_usage_perc"u8) ? 4
                : name.SequenceEqual("vllm:lora_requests_info"u8) ? 5
                : 0;
            if (metric == 0)
            {
                continue;
            }

            var rest = line[nameEnd..];
            ReadOnlySpan<byte> labels = [];
            if (rest[0] == (byte)'{')
            {
                var close = LabelsEnd(rest);
                if (close < 0)
                {
                    error = $"line {lineNumber}: unterminated labels";
                    return MetricsParseStatus.Malformed;
                }

                labels = rest[1..close];
                rest = rest[(close + 1)..];
            }

            if (!TryReadValue(rest, out var value))
            {
                error = $"line {lineNumber}: the value of {Encoding.UTF8.GetString(name)} is not a number";
                return MetricsParseStatus.Malformed;
            }

            found = true;
            switch (metric)
            {
                case 1:
                    waiting += value;
                    break;
                case 2:
                    running += value;
                    break;
                case 3:
                    kv = Math.Max(kv, value);
                    break;
                case 4:
                    gpuKv = Math.Max(gpuKv, value);
                    break;
                case 5:
                    // A gauge set to the time of each change: old label sets linger, the newest is the current one.
                    if (value >= newestInfo)
                    {
                        newestInfo = value;
                        if (!TryReadAdapters(labels, out adapters))
                        {
                            error = $"line {lineNumber}: malformed labels of vllm:lora_requests_info";
                            return MetricsParseStatus.Malformed;
                        }
                    }

                    break;
            }
        }

        if (!found)
        {
            return MetricsParseStatus.NoVllmMetrics;
        }

        var usage = kv >= 0 ? kv : gpuKv >= 0 ? gpuKv : 0;
        metrics = new VllmMetrics(Math.Max(0, waiting), Math.Max(0, running), Math.Clamp(usage, 0, 1), adapters ?? []);
        return MetricsParseStatus.Parsed;
    }

    // The index of the '}' closing the labels that start at rest[0], skipping quoted values; -1 if none.
    private static int LabelsEnd(ReadOnlySpan<byte> rest)
    {
        var quoted = false;
        for (var i = 1; i < rest.Length; i++)
        {
            var c = rest[i];
            if (quoted)
            {
                if (c == (byte)'\\')
                {
                    i++;
                }
                else if (c == (byte)'"')
                {
                    quoted = false;
                }
            }
            else if (c == (byte)'"')
            {
                quoted = true;
            }
            else if (c == (byte)'}')
            {
                return i;
            }
        }

        return -1;
    }

    private static bool TryReadValue(ReadOnlySpan<byte> rest, out double value)
    {
        rest = rest.TrimStart((byte)' ');
        var space = rest.IndexOf((byte)' ');
        var token = space < 0 ? rest : rest[..space];
        if (Utf8Parser.TryParse(token, out value, out var consumed) && consumed == token.Length && double.IsFinite(value))
        {
            return true;
        }

        value = 0;
        return false;
    }

    // running_lora_adapters="a,b" and waiting_lora_adapters="c": the union, in order, without duplicates.
    private static bool TryReadAdapters(ReadOnlySpan<byte> labels, out string[] adapters)
    {
        var list = new List<string>();
        while (!labels.IsEmpty)
        {
            labels = labels.TrimStart((byte)' ').TrimStart((byte)',').TrimStart((byte)' ');
            if (labels.IsEmpty)
            {
                break;
            }

            var eq = labels.IndexOf((byte)'=');
            if (eq <= 0 || eq + 1 >= labels.Length || labels[eq + 1] != (byte)'"')
            {
                adapters = [];
                return false;
            }

            var key = labels[..eq].Trim((byte)' ');
            var value = new StringBuilder();
            var i = eq + 2;
            for (; i < labels.Length && labels[i] != (byte)'"'; i++)
            {
                if (labels[i] == (byte)'\\' && i + 1 < labels.Length)
                {
                    i++;
                    value.Append(labels[i] == (byte)'n' ? '\n' : (char)labels[i]);
                }
                else
                {
                    value.Append((char)labels[i]);
                }
            }

            if (i >= labels.Length)
            {
                adapters = [];
                return false;
            }

            if (key.SequenceEqual("running_lora_adapters"u8) || key.SequenceEqual("waiting_lora_adapters"u8))
            {
                // Adapter names are ASCII in practice; the bytes were appended as Latin-1, so re-decode as UTF-8.
                var text = Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(value.ToString()));
                foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                {
                    if (!list.Contains(name))
                    {
                        list.Add(name);
                    }
                }
            }

            labels = labels[(i + 1)..];
        }

        adapters = [.. list];
        return true;
    }
}
