using System.ClientModel;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;

namespace Resilience;

/// <summary>Scenarios 1-4: a destination killed and restarted, a fallback endpoint, every destination dead, a stream that breaks.</summary>
internal static class Failover
{
    private static readonly string[] s_words = ["one", "two", "three"];

    public static string Config(string clusters, string endpoints, string extra = "") => $$"""
        {
          "Logging": { "LogLevel": { "Default": "Warning" } },
          "ReverseProxy": {
            "Routes": { "openai": { "ClusterId": "{{FirstCluster(clusters)}}", "Match": { "Path": "/v1/{**catch-all}" } } },
            "Clusters": { {{clusters}} }
          },
          "ModelRouting": { {{extra}} "Endpoints": [ {{endpoints}} ] }
        }
        """;

    public static string Cluster(string id, params int[] ports) =>
        $"\"{id}\": {{ \"Destinations\": {{ {string.Join(", ", ports.Select((p, i) => $"\"d{i}\": {{ \"Address\": \"http://127.0.0.1:{p}/\" }}"))} }} }}";

    public static string Endpoint(string id, string cluster, string more = "") =>
        $$"""{ "Id": "{{id}}", "UpstreamModel": "bench-upstream", "Cluster": "{{cluster}}", "MaxContextLength": 32768{{more}} }""";

    /// <summary>Scenario 1: two destinations behind one endpoint, one killed under load and restarted on the same port 7 s later.</summary>
    public static async Task OneOfTwoAsync(Setup setup, Report report, double warmup)
    {
        const double killAt = 8;
        const double down = 7;
        const double total = 24;
        var a = new Backend(setup, setup.Port(1), "s1-a");
        var b = new Backend(setup, setup.Port(2), "s1-b");
        await a.StartAsync();
        await b.StartAsync();
        var gateway = await Gateway.StartAsync(setup, "s1", Config(Cluster("pool", a.Port, b.Port), Endpoint("m", "pool", ", \"IsDefault\": true")), setup.Port(0));
        try
        {
            var url = gateway.Url + "/v1/chat/completions";
            var body = Load.Chat("m");
            var clock = Stopwatch.StartNew();
            await Load.RunAsync(16, warmup, (_, _) => (url, body), clock);
            clock.Restart();
            var run = Load.RunAsync(16, total, (_, _) => (url, body), clock);
            await Task.Delay(TimeSpan.FromSeconds(killAt));
            a.Kill();
            var killed = clock.Elapsed.TotalSeconds;
            await Task.Delay(TimeSpan.FromSeconds(down));
            var restarting = clock.Elapsed.TotalSeconds;
            await a.StartAsync();
            var back = clock.Elapsed.TotalSeconds;
            var samples = await run;

            var before = samples.Where(s => s.StartSeconds < killed).ToList();
            var during = samples.Where(s => s.StartSeconds >= killed && s.StartSeconds < back).ToList();
            var after = samples.Where(s => s.StartSeconds >= back).ToList();
            var failed = samples.Count(s => s.Status != 200);
            double P(List<Sample> set, double p) => Stats.Percentile(set.Where(s => s.Status == 200).Select(s => s.LatencyMs), p);
            var p99Before = P(before, 99);
            var p99During = P(during, 99);
            report.Detail($"S1: {total} s of 16 clients after {warmup} s warm-up; destination d0 (port {a.Port}) SIGKILLed at t={Stats.F(killed, "0.00")} s, restarted at t={Stats.F(restarting, "0.00")} s, listening again at t={Stats.F(back, "0.00")} s.");
            report.Detail($"S1: before {before.Count} req, p50 {Stats.Ms(P(before, 50))} ms, p99 {Stats.Ms(p99Before)} ms, max {Stats.Ms(P(before, 100))} ms; during {during.Count} req, p50 {Stats.Ms(P(during, 50))} ms, p99 {Stats.Ms(p99During)} ms, max {Stats.Ms(P(during, 100))} ms; after {after.Count} req, p50 {Stats.Ms(P(after, 50))} ms, p99 {Stats.Ms(P(after, 99))} ms.");
            report.Detail($"S1: responses with x-gateway-attempts > 1: {samples.Count(s => s.Attempts is not null && s.Attempts != "1")} (attempts seen: {string.Join(", ", samples.GroupBy(s => s.Attempts ?? "none").OrderBy(g => g.Key).Select(g => $"{g.Key}: {g.Count()}"))}); failures: {Stats.Failures(samples)}.");
            report.Row("1. one of two destinations killed 7 s, 16 clients", $"{samples.Count} requests, {failed} failed", "0 failed", failed == 0);
            report.Row("1. p99 before / during the outage", $"p50 {Stats.Ms(P(before, 50))} / {Stats.Ms(P(during, 50))} ms, p99 {Stats.Ms(p99Before)} / {Stats.Ms(p99During)} ms ({Stats.F(p99During / p99Before, "0.00")}×)", "p99 during ≤ 2× before", p99During <= 2 * p99Before);
        }
        finally
        {
            gateway.Stop();
            a.Kill();
            b.Kill();
        }
    }

    /// <summary>Scenario 2: the only destination of an endpoint with Fallbacks killed under load, restarted 7 s later.</summary>
    public static async Task FallbackAsync(Setup setup, Report report, double warmup)
    {
        const double killAt = 5;
        const double down = 7;
        const double total = 22;
        var primary = new Backend(setup, setup.Port(3), "s2-primary");
        var backup = new Backend(setup, setup.Port(4), "s2-backup");
        await primary.StartAsync();
        await backup.StartAsync();
        var config = Config(Cluster("p", primary.Port) + ", " + Cluster("q", backup.Port),
            Endpoint("primary", "p", ", \"Fallbacks\": [ \"backup\" ]") + ", " + Endpoint("backup", "q"));
        var gateway = await Gateway.StartAsync(setup, "s2", config, setup.Port(0));
        try
        {
            var url = gateway.Url + "/v1/chat/completions";
            var body = Load.Chat("primary");
            var clock = Stopwatch.StartNew();
            await Load.RunAsync(16, warmup, (_, _) => (url, body), clock);
            clock.Restart();
            var run = Load.RunAsync(16, total, (_, _) => (url, body), clock);
            await Task.Delay(TimeSpan.FromSeconds(killAt));
            primary.Kill();
            var killed = clock.Elapsed.TotalSeconds;
            await Task.Delay(TimeSpan.FromSeconds(down));
            await primary.StartAsync();
            var back = clock.Elapsed.TotalSeconds;
            var samples = await run;

            var failed = samples.Count(s => s.Status != 200);
            var during = samples.Where(s => s.StartSeconds >= killed + 0.05 && s.StartSeconds < back).ToList();
            var byBackup = samples.Where(s => s.Endpoint == "backup").ToList();
            var marked = samples.Count(s => s.Fallback == "failover");
            var firstPrimaryAgain = samples.FirstOrDefault(s => s.StartSeconds >= back && s.Endpoint == "primary");
            var lastBackup = byBackup.Count == 0 ? double.NaN : byBackup.Max(s => s.StartSeconds);
            report.Detail($"S2: {total} s of 16 clients; primary's only destination (port {primary.Port}) SIGKILLed at t={Stats.F(killed, "0.00")} s, listening again at t={Stats.F(back, "0.00")} s.");
            report.Detail($"S2: served by backup: {byBackup.Count} (first at t={(byBackup.Count == 0 ? "-" : Stats.F(byBackup.Min(s => s.StartSeconds), "0.00"))} s, last at t={Stats.F(lastBackup, "0.00")} s), with x-gateway-fallback: failover: {marked}; during the outage {during.Count} requests, {during.Count(s => s.Endpoint == "backup")} by backup, {during.Count(s => s.Endpoint == "primary")} by primary; primary serves again from t={(firstPrimaryAgain is null ? "never" : Stats.F(firstPrimaryAgain.StartSeconds, "0.00") + " s")}; after that {samples.Count(s => s.StartSeconds > (firstPrimaryAgain?.StartSeconds ?? double.MaxValue) && s.Endpoint == "backup")} more by backup.");
            report.Detail($"S2: failures: {Stats.Failures(samples)}.");
            var allByBackup = during.All(s => s.Endpoint == "backup");
            report.Row("2. only destination of an endpoint with Fallbacks killed 7 s", $"{samples.Count} requests, {failed} failed; {byBackup.Count} served by the fallback ({marked} marked failover); during the outage {during.Count(s => s.Endpoint == "backup")} of {during.Count} by the fallback; primary again {(firstPrimaryAgain is null ? "never" : Stats.F(firstPrimaryAgain.StartSeconds - back, "0.0") + " s after its restart")}",
                "0 failed, all served by the fallback until it returns", failed == 0 && allByBackup && firstPrimaryAgain is not null);
        }
        finally
        {
            gateway.Stop();
            primary.Kill();
            backup.Kill();
        }
    }

    /// <summary>A port that accepts connections and resets them at once, counting the accepts.</summary>
    private sealed class ResetListener : IDisposable
    {
        private readonly TcpListener _listener;
        private readonly Stopwatch _clock;

        public ResetListener(int port, Stopwatch clock)
        {
            _clock = clock;
            _listener = new TcpListener(IPAddress.Loopback, port);
            _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            _listener.Start(512);
            _ = Task.Run(AcceptAsync);
        }

        public List<double> Accepts { get; } = [];

        public void Dispose() => _listener.Stop();

        private async Task AcceptAsync()
        {
            while (true)
            {
                Socket socket;
                try
                {
                    socket = await _listener.AcceptSocketAsync();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                lock (Accepts)
                {
                    Accepts.Add(_clock.Elapsed.TotalSeconds);
                }

                socket.LingerState = new LingerOption(true, 0); // close with RST: a backend that died under the connection
                socket.Close();
            }
        }
    }

    /// <summary>Scenario 3: every destination dead (two reset listeners): 503 upstream_unavailable with Retry-After, and no connection attempt during the cooldown.</summary>
    public static async Task AllDeadAsync(Setup setup, Report report)
    {
        // SPEC §13: the cooldown also holds for a single-destination cluster.
        await AllDeadAsync(setup, report, 2);
        await AllDeadAsync(setup, report, 1);
    }

    private static async Task AllDeadAsync(Setup setup, Report report, int destinations)
    {
        const double cooldown = 5;
        const double total = 12;
        var clock = Stopwatch.StartNew();
        using var d0 = new ResetListener(setup.Port(5), clock);
        using var d1 = new ResetListener(setup.Port(6), clock);
        int[] ports = destinations == 2 ? [setup.Port(5), setup.Port(6)] : [setup.Port(5)];
        var gateway = await Gateway.StartAsync(setup, $"s3-{destinations}", Config(Cluster("dead", ports), Endpoint("dead", "dead")), setup.Port(0));
        try
        {
            var url = gateway.Url + "/v1/chat/completions";
            var body = Load.Chat("dead");
            clock.Restart();
            var first = await Load.SendAsync(url, body, clock);
            var firstEnd = clock.Elapsed.TotalSeconds;
            var samples = await Load.RunAsync(4, total, (_, _) => (url, body), clock, TimeSpan.FromMilliseconds(1));
            List<double> accepts;
            lock (d0.Accepts)
            {
                lock (d1.Accepts)
                {
                    accepts = [.. d0.Accepts.Select(t => t - firstEnd), .. d1.Accepts.Select(t => t - firstEnd)];
                }
            }

            accepts.Sort();
            var inCooldown = accepts.Count(t => t > 0 && t < cooldown - 0.05);
            var all = samples.Prepend(first).ToList();
            var unavailable = all.Count(s => s.Status == 503 && s.Code == "upstream_unavailable");
            var withRetryAfter = all.Count(s => s.RetryAfter is not null);
            report.Detail($"S3 ({destinations} destination{(destinations == 2 ? "s" : "")}): first request: {first.Status} {first.Code}, Retry-After {first.RetryAfter ?? "none"}, x-gateway-attempts {first.Attempts ?? "none"}, {Stats.Ms(first.LatencyMs)} ms.");
            report.Detail($"S3 ({destinations}): then 4 clients for {total} s: {samples.Count} requests; outcomes: {string.Join("; ", all.GroupBy(s => $"{s.Status} {s.Code} Retry-After={s.RetryAfter ?? "none"}").Select(g => $"{g.Key} ×{g.Count()}"))}; p50 latency {Stats.Ms(Stats.Percentile(samples.Select(s => s.LatencyMs), 50))} ms.");
            report.Detail($"S3 ({destinations}): accepts on the dead ports (port {setup.Port(5)}: {d0.Accepts.Count}, port {setup.Port(6)}: {d1.Accepts.Count}), seconds after the first failure: {string.Join(", ", accepts.Select(t => Stats.F(t, "0.000")))}.");
            // A request that connected and failed may answer 502 (SPEC §9: 502 or 503); one made while every destination cools must be 503.
            var connected = all.Count(s => s.Status == 502 && s.Code == "upstream_unavailable");
            var probes = accepts.Count(t => t > 0);
            report.Row($"3. every destination dead ({(destinations == 2 ? "2 destinations" : "a single destination")}, Cooldown 5 s)", $"{all.Count} requests: {unavailable} × 503 upstream_unavailable, {connected} × 502 upstream_unavailable (the first request, which connected, and the requests that probed when a cooldown ended), {all.Count - unavailable - connected} other; {withRetryAfter} with Retry-After",
                "503 upstream_unavailable + Retry-After while cooling (502 only for a request that connected)", unavailable + connected == all.Count && withRetryAfter == all.Count && connected <= 1 + probes);
            report.Row($"3. connection attempts on the dead port{(destinations == 2 ? "s" : "")}", $"{accepts.Count(t => t <= 0)} during the first request, {inCooldown} during the cooldown after it, {accepts.Count} in {Stats.F(total, "0")} s", "0 during the cooldown", inCooldown == 0);
        }
        finally
        {
            gateway.Stop();
        }
    }

    /// <summary>Scenario 4: a backend that sends 3 SSE chunks then aborts the connection; a raw client and the OpenAI .NET SDK.</summary>
    public static async Task MidStreamAsync(Setup setup, Report report)
    {
        var hits = 0;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{setup.Port(7)}");
        await using var backend = builder.Build();
        backend.Run(async context =>
        {
            Interlocked.Increment(ref hits);
            using var reader = new StreamReader(context.Request.Body);
            var request = await reader.ReadToEndAsync();
            if (context.Request.Path.StartsWithSegments("/eof", StringComparison.Ordinal))
            {
                // What the SDK does with the gateway's error event alone: 3 chunks, the event, then a clean end (no [DONE]).
                context.Response.ContentType = "text/event-stream";
                foreach (var word in s_words)
                {
                    await context.Response.WriteAsync($$"""data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"{{word}} "},"finish_reason":null}]}""" + "\n\n");
                }

                await context.Response.WriteAsync("""data: {"error":{"message":"The model server stopped in the middle of the response; the response is incomplete.","type":"server_error","param":null,"code":"upstream_disconnected"}}""" + "\n\n");
                return;
            }

            if (request.Contains("\"stream\":true", StringComparison.Ordinal))
            {
                context.Response.ContentType = "text/event-stream";
                foreach (var word in s_words)
                {
                    await context.Response.WriteAsync($$"""data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"{{word}} "},"finish_reason":null}]}""" + "\n\n");
                    await context.Response.Body.FlushAsync();
                    await Task.Delay(20);
                }
            }
            else
            {
                // A non-streaming answer that dies half-way: Content-Length promises more than is sent.
                context.Response.ContentType = "application/json";
                context.Response.ContentLength = 400;
                await context.Response.WriteAsync("""{"id":"c1","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"one two""");
                await context.Response.Body.FlushAsync();
                await Task.Delay(20);
            }

            context.Abort();
        });
        await backend.StartAsync();
        var gateway = await Gateway.StartAsync(setup, "s4", Config(Cluster("s", setup.Port(7)), Endpoint("sse", "s")), setup.Port(0));
        try
        {
            // Raw client: every data line, then how the stream ended.
            var events = new List<string>();
            string ending;
            int status;
            using (var request = new HttpRequestMessage(HttpMethod.Post, gateway.Url + "/v1/chat/completions") { Content = new ByteArrayContent(Load.Chat("sse", stream: true)) })
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                using var response = await Load.Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                status = (int)response.StatusCode;
                try
                {
                    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
                    while (await reader.ReadLineAsync() is { } line)
                    {
                        if (line.StartsWith("data:", StringComparison.Ordinal))
                        {
                            events.Add(line[5..].Trim());
                        }
                    }

                    ending = "clean end of stream (EOF)";
                }
                catch (Exception e) when (e is IOException or HttpRequestException)
                {
                    ending = $"connection broken after the last event ({e.GetType().Name}: {Load.Innermost(e)})";
                }
            }

            string Describe(string data)
            {
                if (data == "[DONE]")
                {
                    return "[DONE]";
                }

                using var document = JsonDocument.Parse(data);
                return document.RootElement.TryGetProperty("error", out var error)
                    ? $"error event code={error.GetProperty("code")}"
                    : $"chunk \"{document.RootElement.GetProperty("choices")[0].GetProperty("delta").GetProperty("content").GetString()?.Trim()}\"";
            }

            var described = events.Select(Describe).ToList();
            var rawOk = status == 200 && described.Count == 4 && described.Take(3).All(d => d.StartsWith("chunk", StringComparison.Ordinal))
                && described[3] == "error event code=upstream_disconnected";
            report.Detail($"S4 raw client: status {status}; data events: {string.Join(" | ", described)}; then {ending}.");
            report.Row("4. backend dies after 3 SSE chunks (raw HTTP client)", $"{status}; {string.Join(", ", described)}; {(described.Contains("[DONE]") ? "[DONE]" : "no [DONE]")}; then {(ending.StartsWith("clean", StringComparison.Ordinal) ? "end of stream" : "connection broken")}", "3 chunks, upstream_disconnected event, end, no [DONE]", rawOk);

            // Raw client, non-streaming: must never be a 200 whose body parses.
            using (var request = new HttpRequestMessage(HttpMethod.Post, gateway.Url + "/v1/chat/completions") { Content = new ByteArrayContent(Load.Chat("sse")) })
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                string outcome;
                var parsed = false;
                try
                {
                    using var response = await Load.Client.SendAsync(request);
                    var text = await response.Content.ReadAsStringAsync();
                    try
                    {
                        JsonDocument.Parse(text).Dispose();
                        parsed = response.IsSuccessStatusCode;
                    }
                    catch (JsonException)
                    {
                    }

                    outcome = $"{(int)response.StatusCode} with a {text.Length}-character body{(parsed ? " that parses" : " that does not parse")}";
                }
                catch (Exception e) when (e is IOException or HttpRequestException)
                {
                    outcome = $"exception {e.GetType().Name}: {Load.Innermost(e)}";
                }

                report.Detail($"S4 raw client, non-streaming answer cut mid-body (Content-Length 400, about 100 bytes sent, then abort): {outcome}.");
                report.Row("4. non-streaming answer cut mid-body", outcome, "broken connection, never a 200 that parses", !parsed);
            }

            // The official SDK, streaming.
            var client = new ChatClient("sse", new ApiKeyCredential("sk-bench"), new OpenAIClientOptions { Endpoint = new Uri(gateway.Url + "/v1"), NetworkTimeout = TimeSpan.FromSeconds(30) });
            var before = hits;
            var streamed = new StringBuilder();
            var updates = 0;
            string sdk;
            var raised = false;
            try
            {
                await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("Say one two three four.")]))
                {
                    updates++;
                    foreach (var part in update.ContentUpdate)
                    {
                        streamed.Append(part.Text);
                    }
                }

                sdk = "returned normally";
            }
            catch (Exception e)
            {
                raised = true;
                sdk = $"raised {e.GetType().FullName}: {e.Message.Split('\n')[0]}{(e.InnerException is null ? "" : $" (inner {e.InnerException.GetType().Name}: {Load.Innermost(e)})")}";
            }

            report.Detail($"S4 OpenAI SDK {typeof(ChatClient).Assembly.GetName().Version} CompleteChatStreamingAsync: {updates} updates, text \"{streamed.ToString().Trim()}\", then {sdk}; backend requests for this call: {hits - before}.");

            // The SDK against a stub that sends the same error event and then ends the stream cleanly: what the SDK does with the event itself.
            var direct = new ChatClient("sse", new ApiKeyCredential("sk-bench"), new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{setup.Port(7)}/eof/v1") });
            var eventOnly = new StringBuilder();
            var eventUpdates = 0;
            string sdkEvent;
            try
            {
                await foreach (var update in direct.CompleteChatStreamingAsync([new UserChatMessage("Say one two three four.")]))
                {
                    eventUpdates++;
                    foreach (var part in update.ContentUpdate)
                    {
                        eventOnly.Append(part.Text);
                    }
                }

                sdkEvent = "returned normally";
            }
            catch (Exception e)
            {
                sdkEvent = $"raised {e.GetType().FullName}: {e.Message.Split('\n')[0]}";
            }

            report.Detail($"S4 OpenAI SDK against a stub sending 3 chunks + the upstream_disconnected event + a clean end (no [DONE], no reset): {eventUpdates} updates, text \"{eventOnly.ToString().Trim()}\", then {sdkEvent}.");

            // The official SDK, non-streaming.
            before = hits;
            string sdkPlain;
            try
            {
                var completion = await client.CompleteChatAsync([new UserChatMessage("Say one two three four.")]);
                sdkPlain = $"returned \"{completion.Value.Content.FirstOrDefault()?.Text}\"";
            }
            catch (Exception e)
            {
                sdkPlain = $"raised {e.GetType().FullName}: {e.Message.Split('\n')[0]}";
            }

            report.Detail($"S4 OpenAI SDK CompleteChatAsync (non-streaming, cut): {sdkPlain}; backend requests for this call: {hits - before}.");
            report.Row("4. OpenAI .NET SDK streaming call", $"{updates} updates (\"{streamed.ToString().Trim()}\"), then {sdk}", "raises instead of a short answer", raised);
        }
        finally
        {
            gateway.Stop();
            await backend.StopAsync();
        }
    }

    private static string FirstCluster(string clusters) => clusters[(clusters.IndexOf('"', StringComparison.Ordinal) + 1)..clusters.IndexOf('"', clusters.IndexOf('"', StringComparison.Ordinal) + 1)];
}
