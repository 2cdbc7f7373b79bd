using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Resilience;

/// <summary>Every child process this program starts, so that any exit path kills them all (and their pids are in a file the script also kills).</summary>
internal static class Children
{
    private static readonly ConcurrentDictionary<int, Process> s_processes = new();

    public static string? PidFile { get; set; }

    public static Process Start(string fileName, IEnumerable<string> arguments, string logFile)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {fileName}");
        var log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { log.WriteLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (gate) { log.WriteLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        s_processes[process.Id] = process;
        if (PidFile is not null)
        {
            File.AppendAllText(PidFile, process.Id + "\n");
        }

        return process;
    }

    public static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // already gone
        }

        s_processes.TryRemove(process.Id, out _);
    }

    public static void KillAll()
    {
        foreach (var process in s_processes.Values)
        {
            Kill(process);
        }
    }
}

/// <summary>Where the published binaries are, the port range and the work folder.</summary>
internal sealed record Setup(string GatewayDll, string BackendDll, string Work, int BasePort)
{
    public int Port(int offset) => BasePort + offset;

    public static async Task WaitForPortAsync(int port, TimeSpan timeout)
    {
        var until = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(20);
            }
        }

        throw new TimeoutException($"nothing listens on 127.0.0.1:{port}");
    }
}

/// <summary>A BenchBackend process on a fixed port: killed with SIGKILL (connections reset, as in a crash) and restarted on the same port.</summary>
internal sealed class Backend(Setup setup, int port, string name)
{
    private Process? _process;

    public int Port => port;

    public async Task StartAsync()
    {
        _process = Children.Start("dotnet", [setup.BackendDll, "--urls", $"http://127.0.0.1:{port}"], Path.Combine(setup.Work, $"backend-{name}.log"));
        await Setup.WaitForPortAsync(port, TimeSpan.FromSeconds(30));
    }

    public void Kill()
    {
        if (_process is not null)
        {
            Children.Kill(_process);
            _process = null;
        }
    }
}

/// <summary>The published gateway as its own process, with a configuration file it watches.</summary>
internal sealed class Gateway
{
    private readonly Process _process;

    private Gateway(Process process, string configFile, string url, string log)
    {
        _process = process;
        ConfigFile = configFile;
        Url = url;
        Log = log;
    }

    public string ConfigFile { get; }

    public string Url { get; }

    public string Log { get; }

    public int Pid => _process.Id;

    public bool Alive => !_process.HasExited;

    public static async Task<Gateway> StartAsync(Setup setup, string name, string configJson, int port, params string[] extra)
    {
        var configFile = Path.Combine(setup.Work, $"{name}.json");
        await File.WriteAllTextAsync(configFile, configJson);
        var log = Path.Combine(setup.Work, $"gateway-{name}.log");
        string[] arguments = [setup.GatewayDll, "--config", configFile, "--urls", $"http://127.0.0.1:{port}", .. extra];
        if (!extra.Any(a => a.StartsWith("--ModelRouting:Admin:Urls", StringComparison.Ordinal)))
        {
            arguments = [.. arguments, "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile="];
        }

        var process = Children.Start("dotnet", arguments, log);
        var gateway = new Gateway(process, configFile, $"http://127.0.0.1:{port}", log);
        var until = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < until)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"gateway {name} exited: {await File.ReadAllTextAsync(log)}");
            }

            try
            {
                using var response = await Load.Client.GetAsync(gateway.Url + "/readyz");
                if (response.IsSuccessStatusCode)
                {
                    return gateway;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"gateway {name} not ready");
    }

    public void Stop() => Children.Kill(_process);

    /// <summary>VmRSS in MiB, from /proc.</summary>
    public double RssMiB() => ProcStatus("VmRSS:") / 1024.0;

    public int Threads() => (int)ProcStatus("Threads:");

    public int Handles() => Directory.GetFiles($"/proc/{Pid}/fd").Length;

    private long ProcStatus(string key)
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith(key, StringComparison.Ordinal))
            {
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return -1;
    }
}

/// <summary>One request's outcome, as the client saw it.</summary>
internal sealed record Sample(double StartSeconds, double LatencyMs, int Status, string? Endpoint, string? Fallback, string? Attempts, string? Code, string? RetryAfter, string? Error);

/// <summary>The load generator: closed-loop clients on one pooled HttpClient.</summary>
internal static class Load
{
    public static readonly HttpClient Client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        MaxConnectionsPerServer = 1024,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        ConnectTimeout = TimeSpan.FromSeconds(5),
    })
    { Timeout = TimeSpan.FromSeconds(60) };

    public static byte[] Chat(string model, bool stream = false) => Encoding.UTF8.GetBytes(
        $$"""{"model":"{{model}}","messages":[{"role":"system","content":"You are a terse assistant."},{"role":"user","content":"Say ok. This request checks that the gateway keeps serving while a backend restarts."}],"max_tokens":16,"stream":{{(stream ? "true" : "false")}}}""");

    /// <summary>Sends one request and reads the whole response; never throws (a transport failure is status 0).</summary>
    public static async Task<Sample> SendAsync(string url, byte[] body, Stopwatch clock, string? contentType = "application/json", CancellationToken cancel = default)
    {
        var start = clock.Elapsed.TotalSeconds;
        var begin = Stopwatch.GetTimestamp();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
            if (contentType is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            }

            using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel);
            var payload = await response.Content.ReadAsByteArrayAsync(cancel);
            var latency = Stopwatch.GetElapsedTime(begin).TotalMilliseconds;
            var status = (int)response.StatusCode;
            string? code = null;
            if (status != 200)
            {
                code = ErrorCode(payload);
            }
            else if (response.Content.Headers.ContentType?.MediaType == "text/event-stream" && !Encoding.UTF8.GetString(payload).Contains("data: [DONE]", StringComparison.Ordinal))
            {
                code = "stream-without-[DONE]";
            }

            return new Sample(start, latency, status, Header(response, "x-gateway-endpoint"), Header(response, "x-gateway-fallback"),
                Header(response, "x-gateway-attempts"), code, response.Headers.RetryAfter?.ToString(), null);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
        {
            return new Sample(start, Stopwatch.GetElapsedTime(begin).TotalMilliseconds, 0, null, null, null, null, null, $"{e.GetType().Name}: {Innermost(e)}");
        }
    }

    /// <summary>Runs <paramref name="clients"/> closed-loop clients until <paramref name="seconds"/> have passed; <paramref name="next"/> gives (url, body) for a client's next request.</summary>
    public static async Task<List<Sample>> RunAsync(int clients, double seconds, Func<int, long, (string Url, byte[] Body)> next, Stopwatch clock, TimeSpan pause = default, CancellationToken cancel = default)
    {
        var results = new ConcurrentBag<List<Sample>>();
        var until = clock.Elapsed.TotalSeconds + seconds;
        long counter = 0;
        var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var mine = new List<Sample>();
            while (clock.Elapsed.TotalSeconds < until && !cancel.IsCancellationRequested)
            {
                var (url, body) = next(c, Interlocked.Increment(ref counter));
                mine.Add(await SendAsync(url, body, clock));
                if (pause > TimeSpan.Zero)
                {
                    await Task.Delay(pause, CancellationToken.None);
                }
            }

            results.Add(mine);
        }, CancellationToken.None)).ToArray();
        await Task.WhenAll(tasks);
        return [.. results.SelectMany(r => r).OrderBy(s => s.StartSeconds)];
    }

    public static string? ErrorCode(byte[] payload)
    {
        try
        {
            using var document = JsonDocument.Parse(payload);
            return document.RootElement.TryGetProperty("error", out var error) && error.TryGetProperty("code", out var code) ? code.ToString() : "(no error.code)";
        }
        catch (JsonException)
        {
            return "(not JSON)";
        }
    }

    public static string Innermost(Exception e)
    {
        while (e.InnerException is not null)
        {
            e = e.InnerException;
        }

        return e.Message;
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}

/// <summary>Percentiles and small formatting helpers.</summary>
internal static class Stats
{
    public static double Percentile(IEnumerable<double> values, double p)
    {
        var sorted = values.OrderBy(v => v).ToArray();
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var index = (int)Math.Ceiling(p / 100 * sorted.Length) - 1;
        return sorted[Math.Clamp(index, 0, sorted.Length - 1)];
    }

    public static string Ms(double value) => double.IsNaN(value) ? "-" : value.ToString(value < 10 ? "0.00" : "0.0", System.Globalization.CultureInfo.InvariantCulture);

    public static string F(double value, string format = "0.0") => value.ToString(format, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Non-200 outcomes grouped: "status code (count)", first and last time.</summary>
    public static string Failures(IEnumerable<Sample> samples)
    {
        var groups = samples.Where(s => s.Status != 200 || s.Code is not null)
            .GroupBy(s => s.Status == 0 ? $"transport error {s.Error}" : $"{s.Status} {s.Code}")
            .Select(g => $"{g.Key} ×{g.Count()} at t={F(g.Min(s => s.StartSeconds), "0.00")}..{F(g.Max(s => s.StartSeconds), "0.00")} s");
        var text = string.Join("; ", groups);
        return text.Length == 0 ? "none" : text;
    }
}
