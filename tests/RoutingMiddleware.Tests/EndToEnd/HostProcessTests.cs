using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>
/// SPEC §3: the real host, run as a process. Invalid configuration is refused at start-up: the host exits
/// non-zero with a message that names the entry and the field. The appsettings.json beside ProxyHost.dll is
/// the repository's (endpoints 0..2: qwen3-8b, qwen3-8b:sql, qwen3-8b-128k); --config layers over it by index.
/// </summary>
public sealed partial class HostProcessTests
{
    private static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task InvalidConfigFile_ExitsNonZero_NamingEntriesAndFields()
    {
        using var dir = new TempDirectory();
        var bad = dir.Write("bad.json", """
            {
              "ModelRouting": {
                "Endpoints": [
                  { "Cluster": "no-such-cluster" },
                  { "MaxContextLength": 0 }
                ]
              }
            }
            """);

        var result = await HostProcess.RunToExitAsync(["--config", bad, "--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json")], dir.Path);

        Assert.True(result.Exited, "the host did not exit within 30 s: " + result.Output);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Endpoints[0]", result.Output);
        Assert.Contains("Cluster", result.Output);
        Assert.Contains("no-such-cluster", result.Output);
        Assert.Contains("Endpoints[1]", result.Output);
        Assert.Contains("MaxContextLength", result.Output);
        Assert.DoesNotContain("Unhandled exception", result.Output);
    }

    [Fact]
    public async Task InvalidEnvironmentOverride_ExitsNonZero_NamingEntryAndField()
    {
        using var dir = new TempDirectory();

        var result = await HostProcess.RunToExitAsync(
            ["--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json")], dir.Path, new Dictionary<string, string> { ["ModelRouting__Endpoints__2__Status"] = "Sleeping" });

        Assert.True(result.Exited, "the host did not exit within 30 s: " + result.Output);
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("Endpoints[2]", result.Output);
        Assert.Contains("Status", result.Output);
        Assert.Contains("Sleeping", result.Output);
        Assert.DoesNotContain("Unhandled exception", result.Output);
    }

    [Fact]
    public async Task ValidConfigWithDemo_StartsAndServes()
    {
        using var dir = new TempDirectory();
        using var host = HostProcess.Start(["--demo", "--urls", "http://127.0.0.1:0", "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + Path.Combine(dir.Path, "state.json")], dir.Path);

        var address = await host.WaitForListeningAsync(ExitBound);
        Assert.True(address is not null, "the host did not report a listening address within 30 s: " + host.Output);

        using var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        using var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        using var chat = await client.PostAsync("/v1/chat/completions",
            new StringContent("""{"model":"qwen3-8b:sql","messages":[{"role":"user","content":"hi"}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        Assert.Equal("qwen3-8b:sql", chat.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Contains("You asked model 'sql-lora'", await chat.Content.ReadAsStringAsync());
    }

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningRegex();

    private sealed record ExitResult(bool Exited, int ExitCode, string Output);

    /// <summary>The host as a child process: <c>dotnet ProxyHost.dll …</c>, killed (with its tree) on dispose.</summary>
    private sealed class HostProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private HostProcess(Process process)
        {
            _process = process;
        }

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public static HostProcess Start(string[] args, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "ProxyHost.dll");
            Assert.True(File.Exists(dll), $"ProxyHost.dll is not next to the test assembly ({dll})");
            var info = new ProcessStartInfo(DotnetPath())
            {
                WorkingDirectory = workingDirectory,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                StandardOutputEncoding = Encoding.UTF8,
                StandardErrorEncoding = Encoding.UTF8,
            };
            info.ArgumentList.Add(dll);
            foreach (var arg in args)
            {
                info.ArgumentList.Add(arg);
            }

            // Only the configuration this test gives: nothing inherited that ASP.NET Core would read.
            foreach (var key in info.Environment.Keys.ToList())
            {
                if (key.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase)
                    || key.StartsWith("ModelRouting__", StringComparison.OrdinalIgnoreCase)
                    || key.StartsWith("ReverseProxy__", StringComparison.OrdinalIgnoreCase)
                    || key.Equals("DOTNET_URLS", StringComparison.OrdinalIgnoreCase)
                    || key.Equals("DOTNET_ENVIRONMENT", StringComparison.OrdinalIgnoreCase))
                {
                    info.Environment.Remove(key);
                }
            }

            foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            {
                info.Environment[key] = value;
            }

            var process = new Process { StartInfo = info };
            var host = new HostProcess(process);
            process.OutputDataReceived += (_, e) => host.Append(e.Data);
            process.ErrorDataReceived += (_, e) => host.Append(e.Data);
            Assert.True(process.Start());
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return host;
        }

        public static async Task<ExitResult> RunToExitAsync(string[] args, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null)
        {
            using var host = Start(args, workingDirectory, environment);
            using var timeout = new CancellationTokenSource(ExitBound);
            try
            {
                await host._process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                return new ExitResult(false, -1, host.Output);
            }

            // WaitForExitAsync also waits for the redirected streams to reach their end.
            return new ExitResult(true, host._process.ExitCode, host.Output);
        }

        public async Task<Uri?> WaitForListeningAsync(TimeSpan bound)
        {
            var exited = _process.WaitForExitAsync();
            var first = await Task.WhenAny(_listening.Task, exited, Task.Delay(bound));
            return first == _listening.Task ? await _listening.Task : null;
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.Kill(entireProcessTree: true);
                    _process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
            }

            _process.Dispose();
        }

        private static string DotnetPath()
        {
            var hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
            if (!string.IsNullOrEmpty(hostPath) && File.Exists(hostPath))
            {
                return hostPath;
            }

            var processPath = Environment.ProcessPath;
            if (processPath is not null && Path.GetFileNameWithoutExtension(processPath).Equals("dotnet", StringComparison.OrdinalIgnoreCase))
            {
                return processPath;
            }

            return "dotnet";
        }

        private void Append(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_output)
            {
                _output.AppendLine(line);
            }

            var match = ListeningRegex().Match(line);
            if (match.Success)
            {
                _listening.TrySetResult(new Uri(match.Groups[1].Value));
            }
        }
    }

    private sealed class TempDirectory : IDisposable
    {
        public TempDirectory()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gateway-host-test-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public string Write(string name, string content)
        {
            var file = System.IO.Path.Combine(Path, name);
            File.WriteAllText(file, content);
            return file;
        }

        public void Dispose()
        {
            try
            {
                Directory.Delete(Path, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
