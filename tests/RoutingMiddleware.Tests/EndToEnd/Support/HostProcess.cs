using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace ModelRouting.Tests.EndToEnd.Support;

/// <summary>The outcome of a host process run to its exit.</summary>
internal sealed record ExitResult(bool Exited, int ExitCode, string Output);

/// <summary>The host as a child process: <c>dotnet ProxyHost.dll …</c>, killed (with its tree) on dispose.</summary>
internal sealed partial class HostProcess : IDisposable
{
    /// <summary>How long a host may take to start or exit.</summary>
    public static readonly TimeSpan ExitBound = TimeSpan.FromSeconds(30);

    [GeneratedRegex(@"Now listening on: (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningRegex();

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

    /// <summary>Starts <paramref name="dll"/> (default: the ProxyHost.dll next to the test assembly).</summary>
    public static HostProcess Start(string[] args, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null, string? dll = null)
    {
        dll ??= Path.Combine(AppContext.BaseDirectory, "ProxyHost.dll");
        Assert.True(File.Exists(dll), $"ProxyHost.dll is not there ({dll})");
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

    public static async Task<ExitResult> RunToExitAsync(string[] args, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null, string? dll = null)
    {
        using var host = Start(args, workingDirectory, environment, dll);
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

    internal static string DotnetPath()
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
