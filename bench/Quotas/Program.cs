// The quota benchmark (issue 11): the gateway as published, a backend in this process whose token usage differs
// from the gateway's estimate, and two scenarios against client keys:
//   A. a key at 60 requests/min hammered by 32 clients for 2 minutes: how many are admitted, and is every other
//      answer a 429 with Retry-After and the six x-ratelimit-* headers;
//   B. a key at 10,000 tokens/min sending streaming (half asking for the usage chunk, half not) and non-streaming
//      requests: the tokens admitted per minute by the backend's usage, and the most in any 60 s.
// Usage: Quotas <ProxyHost.dll> <work dir> <report.md> [A_SECONDS] [B_SECONDS]
using System.Collections.Concurrent;
using Bench.Common;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

var proxyDll = args[0];
var work = args[1];
var reportPath = args[2];
var aSeconds = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 120;
var bSeconds = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 180;
const string RpmSecret = "sk-bench-rpm";
const string TpmSecret = "sk-bench-tpm";
const int TokensPerMinute = 10_000;

// The backend: counts prompt tokens as 1 per 3 characters of message text (not the gateway's tokenizer), answers
// 20-300 completion tokens (capped by max_tokens), streams one event per token when asked, and records every usage it reports.
var served = new ConcurrentQueue<(TimeSpan At, string Key, long Prompt, long Completion)>();
var clock = Stopwatch.StartNew();
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls("http://127.0.0.1:0");
var backend = builder.Build();
backend.MapPost("/v1/chat/completions", async (HttpContext context) =>
{
    var body = (await JsonNode.ParseAsync(context.Request.Body))!.AsObject();
    var text = string.Concat(body["messages"]!.AsArray().Select(m => m!["content"]!.GetValue<string>()));
    var prompt = (text.Length / 3) + 8;
    var seed = text.GetHashCode(StringComparison.Ordinal);
    var completion = 20 + (Math.Abs(seed) % 281);
    if (body["max_tokens"]?.GetValue<int>() is int max)
    {
        completion = Math.Min(completion, max);
    }

    var key = text.StartsWith("rpm", StringComparison.Ordinal) ? "rpm" : "tpm";
    var usage = new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion };
    if (body["stream"]?.GetValue<bool>() == true)
    {
        context.Response.ContentType = "text/event-stream";
        for (var i = 0; i < completion; i += 25)
        {
            await context.Response.WriteAsync("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"}}]}\n\n");
            await context.Response.Body.FlushAsync();
        }

        if (body["stream_options"]?["include_usage"]?.GetValue<bool>() == true)
        {
            await context.Response.WriteAsync("data: {\"choices\":[],\"usage\":" + usage.ToJsonString() + "}\n\n");
        }

        await context.Response.WriteAsync("data: [DONE]\n\n");
    }
    else
    {
        await context.Response.WriteAsJsonAsync(new JsonObject
        {
            ["id"] = "x",
            ["object"] = "chat.completion",
            ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = "ok" } }),
            ["usage"] = usage,
        });
    }

    served.Enqueue((clock.Elapsed, key, prompt, completion));
});
await backend.StartAsync();
var backendUrl = backend.Urls.First();

string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
var config = new JsonObject
{
    ["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Warning" } },
    ["ReverseProxy"] = new JsonObject
    {
        ["Routes"] = new JsonObject { ["openai"] = new JsonObject { ["ClusterId"] = "pool", ["Match"] = new JsonObject { ["Path"] = "/v1/{**catch-all}" } } },
        ["Clusters"] = new JsonObject { ["pool"] = new JsonObject { ["Destinations"] = new JsonObject { ["b"] = new JsonObject { ["Address"] = backendUrl } } } },
    },
    ["ModelRouting"] = new JsonObject
    {
        ["Endpoints"] = new JsonArray(new JsonObject { ["Id"] = "m", ["Cluster"] = "pool", ["IsDefault"] = true, ["MaxContextLength"] = 32768 }),
        ["Keys"] = new JsonArray(
            new JsonObject { ["Id"] = "rpm-key", ["KeyHash"] = Hash(RpmSecret), ["Models"] = new JsonArray("*"), ["Limits"] = new JsonObject { ["RequestsPerMinute"] = 60, ["TokensPerMinute"] = 100_000_000 } },
            new JsonObject { ["Id"] = "tpm-key", ["KeyHash"] = Hash(TpmSecret), ["Models"] = new JsonArray("*"), ["Limits"] = new JsonObject { ["TokensPerMinute"] = TokensPerMinute } }),
    },
};
var configFile = Path.Combine(work, "quotas.json");
await File.WriteAllTextAsync(configFile, config.ToJsonString());
var port = BenchProcesses.FreePort();
var proxyInfo = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
foreach (var a in new[] { proxyDll, "--config", configFile, "--urls", $"http://127.0.0.1:{port}", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(work, "state.json") })
{
    proxyInfo.ArgumentList.Add(a);
}

using var proxy = Process.Start(proxyInfo)!;
proxy.OutputDataReceived += (_, _) => { };
proxy.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine("proxy: " + e.Data); } };
proxy.BeginOutputReadLine();
proxy.BeginErrorReadLine();
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
try
{
    await BenchProcesses.WaitHealthyAsync(http);

    var report = new StringBuilder();
    report.AppendLine(CultureInfo.InvariantCulture, $"Quota benchmark, {DateTime.UtcNow:yyyy-MM-dd}, {Environment.ProcessorCount} cores, .NET {Environment.Version}; gateway published in Release, backend in the benchmark process.");
    report.AppendLine();
    await ScenarioA(report);
    await ScenarioB(report);
    await File.WriteAllTextAsync(reportPath, report.ToString());
    Console.WriteLine(report);
}
finally
{
    proxy.Kill(entireProcessTree: true);
    await backend.StopAsync();
}

async Task ScenarioA(StringBuilder report)
{
    served.Clear();
    var admitted = 0;
    var refused = 0;
    var badRefusals = 0;
    var badHeaders = 0;
    var other = 0;
    var stop = Stopwatch.StartNew();
    var until = TimeSpan.FromSeconds(aSeconds);
    string[] six = ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"];
    var clients = Enumerable.Range(0, 32).Select(async c =>
    {
        while (stop.Elapsed < until)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent($$"""{"model":"m","max_tokens":50,"messages":[{"role":"user","content":"rpm client {{c}}"}]}""", Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", RpmSecret);
            using var response = await http.SendAsync(request);
            var sentBefore = stop.Elapsed < until;
            if (!six.All(h => response.Headers.Contains(h)))
            {
                Interlocked.Increment(ref badHeaders);
            }

            if (response.StatusCode == HttpStatusCode.OK)
            {
                if (sentBefore)
                {
                    Interlocked.Increment(ref admitted);
                }
            }
            else if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Interlocked.Increment(ref refused);
                var body = JsonNode.Parse(await response.Content.ReadAsStringAsync());
                if (response.Headers.RetryAfter?.Delta is null || body?["error"]?["code"]?.GetValue<string>() != "rate_limit_exceeded" || body["error"]!["type"]!.GetValue<string>() != "requests"
                    || response.Headers.GetValues("x-ratelimit-remaining-requests").Single() != "0")
                {
                    Interlocked.Increment(ref badRefusals);
                }
            }
            else
            {
                Interlocked.Increment(ref other);
            }
        }
    }).ToArray();
    await Task.WhenAll(clients);
    var expected = 60 * (int)Math.Ceiling(aSeconds / 60.0);
    report.AppendLine(CultureInfo.InvariantCulture, $"**A. 60 requests/min, 32 clients, {aSeconds} s:** admitted {admitted} (target {expected} ± 2), refused {refused} (429), other statuses {other}; 429s without Retry-After / code / type / remaining 0: {badRefusals}; responses missing any of the six x-ratelimit-* headers: {badHeaders}.");
    report.AppendLine();
}

async Task ScenarioB(StringBuilder report)
{
    served.Clear();
    var started = clock.Elapsed;
    var stop = Stopwatch.StartNew();
    var until = TimeSpan.FromSeconds(bSeconds);
    var counts = new ConcurrentDictionary<string, int>();
    var random = new Random(42);
    var bodies = Enumerable.Range(0, 64).Select(i =>
    {
        var words = string.Join(' ', Enumerable.Range(0, 30 + random.Next(400)).Select(w => w % 7 == 0 ? "tokenization" : "word" + (w % 13)));
        var kind = i % 4; // 0: JSON, 1: JSON with max_tokens, 2: stream, 3: stream asking for usage
        var node = new JsonObject
        {
            ["model"] = "m",
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"tpm {i} {words}" }),
        };
        if (kind == 1)
        {
            node["max_tokens"] = 150;
        }

        if (kind >= 2)
        {
            node["stream"] = true;
        }

        if (kind == 3)
        {
            node["stream_options"] = new JsonObject { ["include_usage"] = true };
        }

        return (Kind: kind, Json: node.ToJsonString());
    }).ToArray();
    var clients = Enumerable.Range(0, 8).Select(async c =>
    {
        var n = c;
        while (stop.Elapsed < until)
        {
            var (kind, json) = bodies[n++ % bodies.Length];
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TpmSecret);
            using var response = await http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            counts.AddOrUpdate(response.StatusCode == HttpStatusCode.OK ? "ok" : ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture), 1, (_, v) => v + 1);
            if (Environment.GetEnvironmentVariable("QUOTAS_DEBUG") == "1" && response.StatusCode == HttpStatusCode.OK)
            {
                Console.Error.WriteLine($"{stop.Elapsed.TotalSeconds:F1}s kind {kind} est {response.Headers.GetValues("x-gateway-estimated-tokens").Single()} remaining {response.Headers.GetValues("x-ratelimit-remaining-tokens").Single()} last served {served.LastOrDefault()}");
            }
            if (kind == 2 && text.Contains("\"usage\"", StringComparison.Ordinal))
            {
                counts.AddOrUpdate("usage chunk leaked", 1, (_, v) => v + 1);
            }

            if (response.StatusCode == HttpStatusCode.TooManyRequests && response.Headers.RetryAfter?.Delta is { } wait)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(wait.TotalMilliseconds, 250)));
            }
        }
    }).ToArray();
    await Task.WhenAll(clients);

    var records = served.Where(r => r.Key == "tpm").Select(r => (At: r.At - started, Tokens: r.Prompt + r.Completion)).OrderBy(r => r.At).ToList();
    var largest = records.Count == 0 ? 0 : records.Max(r => r.Tokens);
    var minutes = new List<long>();
    for (var m = 0; m < bSeconds / 60; m++)
    {
        minutes.Add(records.Where(r => r.At >= TimeSpan.FromMinutes(m) && r.At < TimeSpan.FromMinutes(m + 1)).Sum(r => r.Tokens));
    }

    long worst = 0;
    for (var s = 0; s + 60 <= bSeconds; s++)
    {
        var sum = records.Where(r => r.At >= TimeSpan.FromSeconds(s) && r.At < TimeSpan.FromSeconds(s + 60)).Sum(r => r.Tokens);
        worst = Math.Max(worst, sum);
    }

    report.AppendLine(CultureInfo.InvariantCulture, $"**B. 10,000 tokens/min, 8 clients, {bSeconds} s, streaming and not, usage ≠ estimate:** tokens admitted by the backend's usage per minute: {string.Join(", ", minutes.Select(v => v.ToString("N0", CultureInfo.InvariantCulture)))} ({string.Join(", ", minutes.Select(v => ((v - TokensPerMinute) * 100.0 / TokensPerMinute).ToString("+0.0;-0.0", CultureInfo.InvariantCulture) + "%"))} of 10,000); most in any 60 s: {worst:N0} (largest single request {largest:N0}: allowed up to {TokensPerMinute + largest:N0}); answers: {string.Join(", ", counts.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key} {p.Value}"))}.");
}
