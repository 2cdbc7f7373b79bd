using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;

namespace Resilience;

/// <summary>Scenarios 6 and 7: configuration reloads and admin changes under load, and the soak.</summary>
internal static class Operations
{
    /// <summary>Scenario 6: every 100 ms the --config file is rewritten (an endpoint and its cluster added or removed) and one admin change is made, under load on endpoints that stay.</summary>
    public static async Task ReloadAsync(Setup setup, Report report, double seconds, bool inPlace)
    {
        const string key = "bench-admin-key-0123456789abcdef";
        var backend = new Backend(setup, setup.Port(9), "s6");
        await backend.StartAsync();
        string Config(bool extra) => Failover.Config(
            Failover.Cluster("c1", backend.Port) + (extra ? ", " + Failover.Cluster("cx", backend.Port) : ""),
            Failover.Endpoint("stable", "c1", ", \"IsDefault\": true, \"Aliases\": [ \"stable-alias\" ]") + (extra ? ", " + Failover.Endpoint("extra", "cx") : ""));
        var admin = $"http://127.0.0.1:{setup.Port(10)}/admin";
        var gateway = await Gateway.StartAsync(setup, "s6", Config(false), setup.Port(0),
            $"--ModelRouting:Admin:Urls={admin[..^"/admin".Length]}", $"--ModelRouting:Admin:Key={key}", "--ModelRouting:Admin:StateFile=");
        try
        {
            var url = gateway.Url + "/v1/chat/completions";
            byte[][] bodies = [Load.Chat("stable"), Load.Chat("stable-alias"), Encoding.UTF8.GetBytes("""{"messages":[{"role":"user","content":"default endpoint"}],"max_tokens":4}""")];
            var clock = Stopwatch.StartNew();
            await Load.RunAsync(16, 5, (_, n) => (url, bodies[n % 3]), clock);
            clock.Restart();
            using var stop = new CancellationTokenSource();
            var adminOutcomes = new ConcurrentDictionary<string, int>();
            var rewrites = 0;
            var seenChanges = 0;
            var mutator = Task.Run(async () =>
            {
                var tick = 0;
                var lastSeen = false;
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100));
                while (clock.Elapsed.TotalSeconds < seconds && await timer.WaitForNextTickAsync())
                {
                    tick++;
                    var json = Config(tick % 2 == 1);
                    if (inPlace)
                    {
                        await File.WriteAllTextAsync(gateway.ConfigFile, json);
                    }
                    else
                    {
                        // Atomic replace, as a deployment tool writes a file: a reader sees the old or the new file whole.
                        var temporary = gateway.ConfigFile + ".tmp";
                        await File.WriteAllTextAsync(temporary, json);
                        File.Move(temporary, gateway.ConfigFile, overwrite: true);
                    }

                    rewrites++;
                    var (method, path, body) = (tick % 4) switch
                    {
                        0 => (HttpMethod.Put, "/aliases/tmp-alias", """{"target":"stable"}"""),
                        1 => (HttpMethod.Put, "/endpoints/rt-ep", """{"Cluster":"c1","BaseModel":"rt","UpstreamModel":"bench-upstream","MaxContextLength":32768}"""),
                        2 => (HttpMethod.Delete, "/aliases/tmp-alias", null),
                        _ => (HttpMethod.Delete, "/endpoints/rt-ep", null),
                    };
                    using var request = new HttpRequestMessage(method, admin + path);
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
                    if (body is not null)
                    {
                        request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                    }

                    try
                    {
                        using var response = await Load.Client.SendAsync(request);
                        adminOutcomes.AddOrUpdate($"{method} {path.Split('/')[1]} {(int)response.StatusCode}", 1, (_, c) => c + 1);
                        var models = await Load.Client.GetStringAsync(gateway.Url + "/v1/models");
                        var hasExtra = models.Contains("\"extra\"", StringComparison.Ordinal);
                        if (hasExtra != lastSeen)
                        {
                            seenChanges++;
                            lastSeen = hasExtra;
                        }
                    }
                    catch (HttpRequestException e)
                    {
                        adminOutcomes.AddOrUpdate($"{method} {path.Split('/')[1]} transport error {e.Message}", 1, (_, c) => c + 1);
                    }
                }
            });
            var samples = await Load.RunAsync(16, seconds, (_, n) => (url, bodies[n % 3]), clock);
            await mutator;
            var failed = samples.Count(s => s.Status != 200);
            report.Detail($"S6: {Stats.F(seconds, "0")} s, 16 clients on stable / stable-alias / no model (default); {rewrites} config rewrites ({(inPlace ? "in place" : "temporary file + rename")}), an endpoint and its cluster added/removed each time; /v1/models showed the change {seenChanges} times; admin calls: {string.Join(", ", adminOutcomes.OrderBy(p => p.Key).Select(p => $"{p.Key} ×{p.Value}"))}.");
            report.Detail($"S6: {samples.Count} requests, p50 {Stats.Ms(Stats.Percentile(samples.Select(s => s.LatencyMs), 50))} ms, p99 {Stats.Ms(Stats.Percentile(samples.Select(s => s.LatencyMs), 99))} ms; failures: {Stats.Failures(samples)}; gateway alive: {gateway.Alive}.");
            report.Row($"6. config rewrite + admin change every 100 ms for {Stats.F(seconds, "0")} s, 16 clients", $"{samples.Count} requests, {failed} failed; {rewrites} rewrites (seen applied {seenChanges}×), {adminOutcomes.Values.Sum()} admin calls", "0 failed", failed == 0);
        }
        finally
        {
            gateway.Stop();
            backend.Kill();
        }
    }

    /// <summary>Scenario 7: steady moderate load (8 clients with a 10 ms pause, one request in four streaming); RSS, handles and threads every 10 s.</summary>
    public static async Task SoakAsync(Setup setup, Report report, int seconds)
    {
        var backend = new Backend(setup, setup.Port(11), "s7");
        await backend.StartAsync();
        var gateway = await Gateway.StartAsync(setup, "s7", Failover.Config(Failover.Cluster("b", backend.Port), Failover.Endpoint("m", "b", ", \"IsDefault\": true")), setup.Port(0));
        try
        {
            var url = gateway.Url + "/v1/chat/completions";
            byte[] plain = Load.Chat("m");
            byte[] stream = Load.Chat("m", stream: true);
            var clock = Stopwatch.StartNew();
            var points = new List<(double T, double Rss, int Handles, int Threads)>();
            var sampler = Task.Run(async () =>
            {
                using var timer = new PeriodicTimer(TimeSpan.FromSeconds(10));
                while (clock.Elapsed.TotalSeconds < seconds + 1 && await timer.WaitForNextTickAsync())
                {
                    if (gateway.Alive)
                    {
                        points.Add((clock.Elapsed.TotalSeconds, gateway.RssMiB(), gateway.Handles(), gateway.Threads()));
                    }
                }
            });
            var samples = await Load.RunAsync(8, seconds, (_, n) => (url, n % 4 == 0 ? stream : plain), clock, TimeSpan.FromMilliseconds(10));
            await sampler;
            var failed = samples.Count(s => s.Status != 200 || s.Code is not null);

            // Second minute vs last minute; a shorter run compares the second sixth with the last sixth.
            var window = seconds >= 180 ? 60.0 : seconds / 6.0;
            var second = points.Where(p => p.T > window && p.T <= 2 * window + 0.5).ToList();
            var last = points.Where(p => p.T > seconds - window).ToList();
            double Mean(List<(double T, double Rss, int Handles, int Threads)> set, Func<(double T, double Rss, int Handles, int Threads), double> f) => set.Count == 0 ? double.NaN : set.Average(f);
            var rss2 = Mean(second, p => p.Rss);
            var rssL = Mean(last, p => p.Rss);
            var handles2 = second.Count == 0 ? 0 : second.Max(p => p.Handles);
            var handlesL = last.Count == 0 ? 0 : last.Max(p => p.Handles);
            var threads2 = second.Count == 0 ? 0 : second.Max(p => p.Threads);
            var threadsL = last.Count == 0 ? 0 : last.Max(p => p.Threads);
            var drift = (rssL - rss2) / rss2;
            report.Detail($"S7: {seconds} s, 8 clients with 10 ms pauses, 1 in 4 streaming: {samples.Count} requests ({Stats.F(samples.Count / (double)seconds, "0")} req/s), p50 {Stats.Ms(Stats.Percentile(samples.Select(s => s.LatencyMs), 50))} ms, p99 {Stats.Ms(Stats.Percentile(samples.Select(s => s.LatencyMs), 99))} ms; failures (non-200 or stream without [DONE]): {Stats.Failures(samples)}.");
            report.Detail("S7 samples (t s: RSS MiB / fds / threads): " + string.Join(", ", points.Select(p => $"{Stats.F(p.T, "0")}: {Stats.F(p.Rss)} / {p.Handles} / {p.Threads}")));
            var label = seconds >= 180 ? "second minute / last minute" : $"second / last {Stats.F(window, "0")} s";
            report.Row($"7. soak {seconds} s, 1 in 4 streaming", $"{samples.Count} requests, {failed} failed; {label}: RSS {Stats.F(rss2)} / {Stats.F(rssL)} MiB ({Stats.F(drift * 100, "+0.0;-0.0")}%), fds (max) {handles2} / {handlesL}, threads (max) {threads2} / {threadsL}", "RSS within 10%, no growth in fds or threads", failed == 0 && Math.Abs(drift) <= 0.10 && handlesL <= handles2 && threadsL <= threads2);
        }
        finally
        {
            gateway.Stop();
            backend.Kill();
        }
    }
}
