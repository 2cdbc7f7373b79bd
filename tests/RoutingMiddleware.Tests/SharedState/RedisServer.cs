using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using ModelRouting.Tests.Admin;

namespace ModelRouting.Tests.SharedState;

/// <summary>
/// A real <c>redis-server</c> (the Debian package) on a free loopback port, without persistence, killed on dispose.
/// It can be killed and started again on the same port, as an outage.
/// </summary>
internal sealed class RedisServer : IAsyncDisposable
{
    private Process? _process;

    private RedisServer(int port) => Port = port;

    public int Port { get; }

    /// <summary>Gets the StackExchange.Redis connection string.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    public static async Task<RedisServer> StartAsync()
    {
        var server = new RedisServer(AdminTestSupport.FreeLoopbackPort());
        await server.RestartAsync();
        return server;
    }

    /// <summary>Starts the server (again) on its port and waits until it answers PING.</summary>
    public async Task RestartAsync()
    {
        var info = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no" })
        {
            info.ArgumentList.Add(argument);
        }

        _process = Process.Start(info) ?? throw new InvalidOperationException("redis-server did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (await PingAsync())
            {
                return;
            }

            if (DateTime.UtcNow > deadline || _process.HasExited)
            {
                throw new InvalidOperationException($"redis-server on port {Port} did not answer");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Kills the server (an outage); its data is lost (no persistence).</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } process)
        {
            process.Kill();
            await process.WaitForExitAsync();
        }

        _process?.Dispose();
        _process = null;
    }

    /// <summary>Sends one command and returns the first reply line.</summary>
    public async Task<string> CommandAsync(params string[] arguments) => (await ReplyAsync(arguments))[0];

    /// <summary>Sends one command and returns the reply's lines (one read: short replies only).</summary>
    public async Task<string[]> ReplyAsync(params string[] arguments)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", Port);
        var stream = client.GetStream();
        var request = new StringBuilder().Append('*').Append(arguments.Length).Append("\r\n");
        foreach (var argument in arguments)
        {
            request.Append('$').Append(Encoding.UTF8.GetByteCount(argument)).Append("\r\n").Append(argument).Append("\r\n");
        }

        await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()));
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer);
        return Encoding.UTF8.GetString(buffer, 0, read).Split("\r\n");
    }

    public async ValueTask DisposeAsync() => await KillAsync();

    private async Task<bool> PingAsync()
    {
        try
        {
            return await CommandAsync("PING") == "+PONG";
        }
        catch (SocketException)
        {
            return false;
        }
    }
}

/// <summary>
/// A test that needs a real <c>redis-server</c> (SPEC §16): skipped, with the reason, only when the Debian package is
/// not installed and the run does not require it; under CI (<c>CI=true</c>) or with <c>GATEWAY_REQUIRE_REDIS=1</c>
/// (.ci/run installs the package and sets it) a missing server is a failure.
/// </summary>
public sealed class RedisFactAttribute : FactAttribute
{
    public RedisFactAttribute()
    {
        var required = Environment.GetEnvironmentVariable("GATEWAY_REQUIRE_REDIS") == "1"
            || string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        var installed = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(directory => File.Exists(Path.Combine(directory, "redis-server")));
        if (!installed && !required)
        {
            Skip = "No redis-server on this machine (apt-get install redis-server); CI and GATEWAY_REQUIRE_REDIS=1 make this a failure.";
        }
    }
}
