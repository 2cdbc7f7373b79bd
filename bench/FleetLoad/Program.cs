using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FleetLoad;

// The load-balancing benchmark's client (README "Inference-aware load balancing"): sends one workload's schedule
// (Workloads) to the gateway, streaming, and prints one JSON line of figures.
//   dotnet FleetLoad.dll --url http://127.0.0.1:8080 --workload a --rate 2 --duration 30 --seed 1 --label ModelAware
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 0; i + 1 < args.Length; i += 2)
{
    options[args[i].TrimStart('-')] = args[i + 1];
}

string Option(string name, string fallback) => options.TryGetValue(name, out var value) ? value : fallback;
var url = new Uri(Option("url", "http://127.0.0.1:8080"));
var workload = Option("workload", "c");
var rate = double.Parse(Option("rate", "10"), CultureInfo.InvariantCulture);
var duration = double.Parse(Option("duration", "30"), CultureInfo.InvariantCulture);
var seed = int.Parse(Option("seed", "1"), CultureInfo.InvariantCulture);
var label = Option("label", "");
var conversations = Workloads.Create(workload, rate, duration, seed, Option("model", "sim-base"));

using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue, UseProxy = false })
{
    BaseAddress = url,
    Timeout = TimeSpan.FromSeconds(120),
};

var results = new List<(double Start, double Ttft, double E2e, double End, bool Ok)>();
var clock = Stopwatch.StartNew();
await Task.WhenAll(conversations.Select(RunAsync));
var ok = results.Where(r => r.Ok).ToList();
var first = results.Count == 0 ? 0 : results.Min(r => r.Start);
var last = ok.Count == 0 ? 0 : ok.Max(r => r.End);
double Percentile(IEnumerable<double> values, double p)
{
    var sorted = values.Order().ToArray();
    return sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}

var summary = new JsonObject
{
    ["policy"] = label,
    ["workload"] = workload,
    ["rate"] = rate,
    ["duration_s"] = duration,
    ["seed"] = seed,
    ["requests"] = results.Count,
    ["failed"] = results.Count - ok.Count,
    ["ttft_p50_ms"] = Math.Round(Percentile(ok.Select(r => r.Ttft), 0.5), 1),
    ["ttft_p90_ms"] = Math.Round(Percentile(ok.Select(r => r.Ttft), 0.9), 1),
    ["e2e_p50_ms"] = Math.Round(Percentile(ok.Select(r => r.E2e), 0.5), 1),
    ["e2e_p90_ms"] = Math.Round(Percentile(ok.Select(r => r.E2e), 0.9), 1),
    ["throughput_rps"] = Math.Round(ok.Count / Math.Max(0.001, (last - first) / 1000), 2),
};
Console.WriteLine(summary.ToJsonString());
return 0;

async Task RunAsync(Conversation conversation)
{
    var wait = TimeSpan.FromSeconds(conversation.StartSeconds) - clock.Elapsed;
    if (wait > TimeSpan.Zero)
    {
        await Task.Delay(wait);
    }

    var messages = new JsonArray();
    if (conversation.System is not null)
    {
        messages.Add(new JsonObject { ["role"] = "system", ["content"] = conversation.System });
    }

    foreach (var turn in conversation.Turns)
    {
        messages.Add(new JsonObject { ["role"] = "user", ["content"] = turn.UserText });
        var body = new JsonObject
        {
            ["model"] = conversation.Model,
            ["messages"] = messages.DeepClone(),
            ["max_tokens"] = conversation.MaxTokens,
            ["stream"] = true,
        }.ToJsonString();
        var start = clock.Elapsed.TotalMilliseconds;
        var ttft = double.NaN;
        var reply = new StringBuilder();
        var okay = false;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (response.IsSuccessStatusCode)
            {
                using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                while (await reader.ReadLineAsync() is { } line)
                {
                    if (line == "data: [DONE]")
                    {
                        okay = !double.IsNaN(ttft);
                        break;
                    }

                    var at = line.IndexOf("\"content\":\"", StringComparison.Ordinal);
                    if (at >= 0)
                    {
                        if (double.IsNaN(ttft))
                        {
                            ttft = clock.Elapsed.TotalMilliseconds - start;
                        }

                        at += 11;
                        reply.Append(line, at, line.IndexOf('"', at) - at);
                    }
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
        }

        var end = clock.Elapsed.TotalMilliseconds;
        lock (results)
        {
            results.Add((start, ttft, end - start, end, okay));
        }

        if (!okay)
        {
            return;
        }

        messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = reply.ToString() });
        if (turn.ThinkSeconds > 0)
        {
            await Task.Delay(TimeSpan.FromSeconds(turn.ThinkSeconds));
        }
    }
}
