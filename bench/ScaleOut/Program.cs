// The scale-out benchmark (issue 13, SPEC §16): a backend in this process, a redis-server and three gateway replicas
// (the published ProxyHost) on loopback ports, all sharing that Redis, then:
//   1. propagation: 100 keys created on replica 1, each timed until it is accepted on replicas 2 and 3 (p50/p99/max);
//   2. a key at 60 requests/min, 32 clients spread over the 3 replicas for RPM_SECONDS: how many are admitted;
//   3. Redis killed for 10 s under load (16 clients, a key whose limits are far away): failed requests, admin
//      writes during the outage, and propagation of 10 changes after Redis returns;
//   4. single replica, 1 KB chat requests with wrk, limits on: req/s with Redis on vs a replica without Redis.
// Usage: ScaleOut <ProxyHost.dll> <work dir> <report.md> <post.lua> [RPM_SECONDS] [LOAD_SECONDS]
using System.Collections.Concurrent;
using Bench.Common;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

var proxyDll = args[0];
var work = args[1];
var reportPath = args[2];
var postLua = args[3];
var rpmSeconds = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 120;
var loadSeconds = args.Length > 5 ? int.Parse(args[5], CultureInfo.InvariantCulture) : 10;
const string AdminKey = "bench-admin-key-0123456789";
const string RpmSecret = "sk-bench-rpm";
const string OpenSecret = "sk-bench-open";
var inv = CultureInfo.InvariantCulture;

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.WebHost.UseUrls("http://127.0.0.1:0");
var backend = builder.Build();
var reply = """{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],"usage":{"prompt_tokens":300,"completion_tokens":1,"total_tokens":301}}"""u8.ToArray();
backend.MapPost("/v1/chat/completions", async (HttpContext context) =>
{
    await context.Request.Body.CopyToAsync(Stream.Null);
    context.Response.ContentType = "application/json";
    await context.Response.Body.WriteAsync(reply);
});
await backend.StartAsync();
var backendUrl = backend.Urls.First();

string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
var redisPort = BenchProcesses.FreePort();
Process? redis = null;
async Task StartRedisAsync()
{
    var info = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in new[] { "--port", redisPort.ToString(inv), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
    {
        info.ArgumentList.Add(a);
    }

    redis = Process.Start(info)!;
    redis.OutputDataReceived += (_, _) => { };
    redis.BeginOutputReadLine();
    for (var i = 0; i < 100; i++)
    {
        try
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, redisPort);
            return;
        }
        catch (SocketException)
        {
            await Task.Delay(50);
        }
    }

    throw new InvalidOperationException("redis-server did not start");
}

void KillRedis()
{
    redis?.Kill();
    redis?.WaitForExit();
    redis?.Dispose();
    redis = null;
}

JsonObject Config(bool withRedis) => new()
{
    ["Logging"] = new JsonObject { ["LogLevel"] = new JsonObject { ["Default"] = "Warning" } },
    ["ReverseProxy"] = new JsonObject
    {
        ["Routes"] = new JsonObject { ["openai"] = new JsonObject { ["ClusterId"] = "pool", ["Match"] = new JsonObject { ["Path"] = "/v1/{**catch-all}" } } },
        ["Clusters"] = new JsonObject { ["pool"] = new JsonObject { ["Destinations"] = new JsonObject { ["b"] = new JsonObject { ["Address"] = backendUrl } } } },
    },
    ["ModelRouting"] = new JsonObject
    {
        ["Endpoints"] = new JsonArray(new JsonObject
        {
            ["Id"] = "m", ["Cluster"] = "pool", ["IsDefault"] = true, ["MaxContextLength"] = 32768,
            ["Limits"] = new JsonObject { ["RequestsPerMinute"] = 100_000_000, ["TokensPerMinute"] = 100_000_000_000 },
        }),
        ["Keys"] = new JsonArray(
            new JsonObject { ["Id"] = "rpm-key", ["KeyHash"] = Hash(RpmSecret), ["Models"] = new JsonArray("*"), ["Limits"] = new JsonObject { ["RequestsPerMinute"] = 60 } },
            new JsonObject { ["Id"] = "open-key", ["KeyHash"] = Hash(OpenSecret), ["Models"] = new JsonArray("*"), ["Limits"] = new JsonObject { ["RequestsPerMinute"] = 100_000_000, ["TokensPerMinute"] = 100_000_000_000 } }),
        ["Redis"] = withRedis ? new JsonObject { ["Configuration"] = $"127.0.0.1:{redisPort}", ["Replicas"] = 3 } : null,
    },
};

var replicas = new List<(Process Process, HttpClient Client, HttpClient Admin)>();
async Task<(Process Process, HttpClient Client, HttpClient Admin)> StartReplicaAsync(string name, bool withRedis)
{
    var configFile = Path.Combine(work, name + ".json");
    await File.WriteAllTextAsync(configFile, Config(withRedis).ToJsonString());
    var port = BenchProcesses.FreePort();
    var adminPort = BenchProcesses.FreePort();
    var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var a in new[]
    {
        proxyDll, "--config", configFile, "--urls", $"http://127.0.0.1:{port}", $"--ModelRouting:Admin:Urls=http://127.0.0.1:{adminPort}",
        "--ModelRouting:Admin:Key=" + AdminKey, "--ModelRouting:Admin:StateFile=" + Path.Combine(work, name + "-state.json"),
    })
    {
        info.ArgumentList.Add(a);
    }

    var process = Process.Start(info)!;
    process.OutputDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine($"{name}: {e.Data}"); } };
    process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Console.Error.WriteLine($"{name}: {e.Data}"); } };
    process.BeginOutputReadLine();
    process.BeginErrorReadLine();
    var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
    var admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{adminPort}"), Timeout = TimeSpan.FromSeconds(30) };
    admin.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
    await BenchProcesses.WaitHealthyAsync(client);

    return (process, client, admin);
}

async Task<HttpStatusCode> ChatAsync(HttpClient client, string secret, string? body = null)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
    {
        Content = new StringContent(body ?? """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"),
    };
    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
    try
    {
        using var response = await client.SendAsync(request);
        return response.StatusCode;
    }
    catch (HttpRequestException)
    {
        return 0;
    }
}

async Task<(HttpStatusCode Status, string? Secret)> CreateKeyAsync(HttpClient admin, string id)
{
    using var response = await admin.PostAsync("/admin/keys", new StringContent($$"""{"Id":"{{id}}","Models":["*"]}""", Encoding.UTF8, "application/json"));
    var text = await response.Content.ReadAsStringAsync();
    return (response.StatusCode, response.StatusCode == HttpStatusCode.Created ? JsonNode.Parse(text)!["key"]!.GetValue<string>() : null);
}

// Creates a key on replica 1 and returns, for replicas 2 and 3, the time from sending the admin request until the
// key is accepted there (polled every 5 ms).
async Task<double[]> PropagationAsync(string id)
{
    var watch = Stopwatch.StartNew();
    var (status, secret) = await CreateKeyAsync(replicas[0].Admin, id);
    if (status != HttpStatusCode.Created)
    {
        throw new InvalidOperationException($"creating {id} answered {status}");
    }

    return await Task.WhenAll(replicas.Skip(1).Select(async r =>
    {
        while (await ChatAsync(r.Client, secret!) != HttpStatusCode.OK)
        {
            if (watch.Elapsed > TimeSpan.FromSeconds(30))
            {
                return double.PositiveInfinity;
            }

            await Task.Delay(5);
        }

        return watch.Elapsed.TotalMilliseconds;
    }));
}

string Percentiles(List<double> ms)
{
    ms.Sort();
    double At(double p) => ms[Math.Min(ms.Count - 1, (int)Math.Ceiling(p * ms.Count) - 1)];
    return string.Create(inv, $"p50 {At(0.5):F0} ms, p99 {At(0.99):F0} ms, max {ms[^1]:F0} ms over {ms.Count} observations");
}

var report = new StringBuilder();
report.AppendLine(inv, $"Scale-out benchmark, {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z, {Environment.ProcessorCount} cores (shared), .NET {Environment.Version}; redis-server and 3 replicas (ProxyHost, Release) on loopback, backend in the benchmark process.");
report.AppendLine();
try
{
    await StartRedisAsync();
    for (var i = 1; i <= 3; i++)
    {
        replicas.Add(await StartReplicaAsync("replica" + i, withRedis: true));
    }

    if (await ChatAsync(replicas[1].Client, "sk-not-a-key") != HttpStatusCode.Unauthorized)
    {
        throw new InvalidOperationException("an unknown key is not refused: the propagation probe would measure nothing");
    }

    // 1. Propagation.
    var propagation = new List<double>();
    for (var i = 0; i < 100; i++)
    {
        propagation.AddRange(await PropagationAsync($"p{i}"));
    }

    report.AppendLine(inv, $"**1. Admin change propagation** (key created on replica 1 until accepted on replicas 2 and 3, from the admin request's start): {Percentiles(propagation)}. Target p99 ≤ 1 s.");
    report.AppendLine();
    Console.WriteLine(report);

    // 2. 60/min across 3 replicas.
    var admitted = 0;
    var refused = 0;
    var other = 0;
    var until = TimeSpan.FromSeconds(rpmSeconds);
    var stop = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, 32).Select(async c =>
    {
        while (stop.Elapsed < until)
        {
            var status = await ChatAsync(replicas[c % 3].Client, RpmSecret);
            var sentBefore = stop.Elapsed < until;
            if (status == HttpStatusCode.OK && sentBefore)
            {
                Interlocked.Increment(ref admitted);
            }
            else if (status == HttpStatusCode.TooManyRequests)
            {
                Interlocked.Increment(ref refused);
            }
            else if (status != HttpStatusCode.OK)
            {
                Interlocked.Increment(ref other);
            }
        }
    }));
    var expected = 60 * (int)Math.Ceiling(rpmSeconds / 60.0);
    report.AppendLine(inv, $"**2. 60 requests/min, 32 clients over 3 replicas, {rpmSeconds} s:** admitted {admitted} (target {expected} ± 3; without shared counters it would be up to {3 * expected}), refused {refused}, other statuses {other}.");
    report.AppendLine();
    Console.WriteLine(report);

    // 3. Redis killed for 10 s under load.
    var ok = 0;
    var failed = new ConcurrentDictionary<int, int>();
    var outage = Stopwatch.StartNew();
    var loadUntil = TimeSpan.FromSeconds(25);
    var load = Task.WhenAll(Enumerable.Range(0, 16).Select(async c =>
    {
        while (outage.Elapsed < loadUntil)
        {
            var status = await ChatAsync(replicas[c % 3].Client, OpenSecret);
            if (status == HttpStatusCode.OK)
            {
                Interlocked.Increment(ref ok);
            }
            else
            {
                failed.AddOrUpdate((int)status, 1, (_, n) => n + 1);
            }
        }
    }));
    await Task.Delay(TimeSpan.FromSeconds(5));
    KillRedis();
    var killedAt = outage.Elapsed;
    await Task.Delay(TimeSpan.FromSeconds(2));
    var duringStatuses = new List<HttpStatusCode>();
    for (var i = 0; i < 6; i++)
    {
        duringStatuses.Add((await CreateKeyAsync(replicas[i % 3].Admin, $"during{i}")).Status);
        await Task.Delay(1000);
    }

    while (outage.Elapsed < killedAt + TimeSpan.FromSeconds(10))
    {
        await Task.Delay(50);
    }

    await StartRedisAsync();
    var restartedAt = outage.Elapsed;
    var firstWrite = Stopwatch.StartNew();
    // Until the write is in force: 201, or 409 when an earlier attempt that answered 503 (its Redis call timed out)
    // had been applied after all.
    var afterStatuses = new List<HttpStatusCode>();
    while (firstWrite.Elapsed < TimeSpan.FromSeconds(30))
    {
        var (status, _) = await CreateKeyAsync(replicas[0].Admin, "after0");
        afterStatuses.Add(status);
        if (status is HttpStatusCode.Created or HttpStatusCode.Conflict)
        {
            break;
        }

        await Task.Delay(20);
    }

    var writesBackAfter = firstWrite.Elapsed.TotalMilliseconds;
    var afterAnswers = string.Join(", ", afterStatuses.CountBy(s => (int)s).Select(c => $"{c.Value}× {c.Key}"));
    var after = new List<double>();
    for (var i = 1; i <= 10; i++)
    {
        after.AddRange(await PropagationAsync($"after{i}"));
    }

    await load;
    report.AppendLine(inv, $"**3. Redis killed for 10 s under load** (16 clients over 3 replicas, 25 s, Redis killed at {killedAt.TotalSeconds:F1} s, back at {restartedAt.TotalSeconds:F1} s): {ok} requests served, failed {failed.Values.Sum()} ({string.Join(", ", failed.Select(f => $"{f.Key}: {f.Value}"))}); admin writes during the outage answered {string.Join(", ", duringStatuses.Select(s => (int)s))}; first admin write in force {writesBackAfter:F0} ms after Redis was restarted (answers: {afterAnswers}); then propagation of 10 changes: {Percentiles(after)}.");
    report.AppendLine();
    Console.WriteLine(report);

    // 4. Single replica, Redis on vs off, limits on in both.
    foreach (var r in replicas.Skip(1))
    {
        r.Process.Kill(entireProcessTree: true);
    }

    var body = Path.Combine(work, "body-1k.json");
    var filler = new string('x', 1024 - 80);
    await File.WriteAllTextAsync(body, $$"""{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"{{filler}}"}]}""");
    var off = await StartReplicaAsync("no-redis", withRedis: false);
    long requests = 0; // what the last wrk run sent
    replicas.Add(off);
    async Task<double> WrkAsync(HttpClient client)
    {
        var info = new ProcessStartInfo("wrk") { RedirectStandardOutput = true };
        foreach (var a in new[] { "-t1", "-c32", $"-d{loadSeconds}s", "-s", postLua, client.BaseAddress + "v1/chat/completions" })
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["BODY_FILE"] = body;
        info.Environment["AUTH"] = OpenSecret;
        using var wrk = Process.Start(info)!;
        var output = await wrk.StandardOutput.ReadToEndAsync();
        await wrk.WaitForExitAsync();
        if (Regex.Match(output, @"Non-2xx or 3xx responses: (\d+)") is { Success: true } bad)
        {
            throw new InvalidOperationException($"wrk saw {bad.Groups[1].Value} failed responses");
        }

        requests += long.Parse(Regex.Match(output, @"(\d+) requests in").Groups[1].Value, inv);
        return double.Parse(Regex.Match(output, @"Requests/sec:\s+([\d.]+)").Groups[1].Value, inv);
    }

    // Redis's script calls (INFO commandstats) and CPU time, to say what each request on the Redis side cost there.
    long RedisScriptCalls()
    {
        var info = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true };
        foreach (var a in new[] { "-p", redisPort.ToString(inv), "INFO", "commandstats" })
        {
            info.ArgumentList.Add(a);
        }

        using var cli = Process.Start(info)!;
        var stats = cli.StandardOutput.ReadToEnd();
        cli.WaitForExit();
        return Regex.Matches(stats, @"cmdstat_(?:evalsha|eval):calls=(\d+)").Sum(m => long.Parse(m.Groups[1].Value, inv));
    }

    await WrkAsync(replicas[0].Client); // warm-up
    await WrkAsync(off.Client);
    var on = new List<double>();
    var offs = new List<double>();
    var (onRequests, offRequests) = (0L, 0L);
    var (onCpu, offCpu, redisCpu) = (TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero);
    var redisCalls = 0L;
    for (var round = 0; round < 3; round++)
    {
        (requests, var calls, var cpu, var redisBefore) = (0, RedisScriptCalls(), replicas[0].Process.TotalProcessorTime, redis!.TotalProcessorTime);
        on.Add(await WrkAsync(replicas[0].Client));
        (onRequests, onCpu, redisCalls) = (onRequests + requests, onCpu + replicas[0].Process.TotalProcessorTime - cpu, redisCalls + RedisScriptCalls() - calls);
        redisCpu += redis.TotalProcessorTime - redisBefore;
        (requests, cpu) = (0, off.Process.TotalProcessorTime);
        offs.Add(await WrkAsync(off.Client));
        (offRequests, offCpu) = (offRequests + requests, offCpu + off.Process.TotalProcessorTime - cpu);
    }

    var onMedian = on.Order().ElementAt(1);
    var offMedian = offs.Order().ElementAt(1);
    report.AppendLine(inv, $"**4. Single replica, 1 KB chat requests, key and endpoint limits on, wrk -c32 {loadSeconds} s × 3 rounds alternating:** Redis on {onMedian:F0} req/s (rounds {string.Join(", ", on.Select(v => v.ToString("F0", inv)))}), Redis off {offMedian:F0} req/s (rounds {string.Join(", ", offs.Select(v => v.ToString("F0", inv)))}): on/off {onMedian / offMedian:P1}. Target within 10%.");
    report.AppendLine(inv, $"Per request: gateway CPU {onCpu.TotalMicroseconds / onRequests:F1} µs with Redis, {offCpu.TotalMicroseconds / offRequests:F1} µs without; Redis {(double)redisCalls / onRequests:F4} script calls and {redisCpu.TotalMicroseconds / onRequests:F2} µs of CPU.");
    await File.WriteAllTextAsync(reportPath, report.ToString());
    Console.WriteLine(report);
}
finally
{
    foreach (var r in replicas)
    {
        if (!r.Process.HasExited)
        {
            r.Process.Kill(entireProcessTree: true);
        }
    }

    KillRedis();
    await backend.StopAsync();
}
