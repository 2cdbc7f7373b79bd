using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using StackExchange.Redis;

namespace ModelRouting.SharedState;

/// <summary>
/// The one Redis connection of the process (SPEC §16) and its circuit breaker: after a failure (a timeout, a
/// dropped connection) Redis is not asked for <see cref="RedisOptions.BreakDuration"/>, then one caller probes it.
/// So a dead Redis costs a request nothing after the first timeout: callers see <see cref="IsAvailable"/> false
/// and take their fallback at once. Thread-safe.
/// </summary>
internal sealed class RedisConnection : IDisposable
{
    private readonly ILogger<RedisConnection> _logger;
    private readonly TimeProvider _time;
    private readonly ConnectionMultiplexer? _multiplexer;
    private readonly long _breakTicks;
    private long _openUntil;   // timestamp until which the breaker is open; 0 when closed
    private int _probing;
    private int _down;

    public RedisConnection(IOptions<ModelRoutingOptions> options, TimeProvider time, ILogger<RedisConnection> logger)
    {
        Options = options.Value.Redis;
        _time = time;
        _logger = logger;
        _breakTicks = (long)(Options.BreakDuration.TotalSeconds * time.TimestampFrequency);
        if (!Options.Enabled)
        {
            return;
        }

        var timeout = (int)Math.Max(1, Options.Timeout.TotalMilliseconds);
        ConfigurationOptions configuration;
        try
        {
            configuration = ConfigurationOptions.Parse(Options.Configuration!);
        }
        catch (ArgumentException e)
        {
            throw new ModelRoutingConfigurationException($"ModelRouting:Redis:Configuration: {e.Message}", e);
        }

        configuration.AbortOnConnectFail = false;
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.ConnectTimeout = Math.Max(timeout, 3000); // a refused connection fails at once; a slow one may take a while
        configuration.SyncTimeout = timeout;
        configuration.AsyncTimeout = timeout;
        configuration.ConnectRetry = 1;
        configuration.ReconnectRetryPolicy = new LinearRetry(500);
        configuration.HeartbeatInterval = TimeSpan.FromMilliseconds(500);
        configuration.ClientName ??= "model-gateway";
        _multiplexer = ConnectionMultiplexer.Connect(configuration);
        _multiplexer.ConnectionFailed += (_, e) => Failed(e.FailureType.ToString());
        _multiplexer.ConnectionRestored += (_, _) => Succeeded();
        if (_multiplexer.IsConnected)
        {
            SharedStateLog.Connected(_logger, string.Join(", ", configuration.EndPoints));
        }
        else if (Options.Required)
        {
            _multiplexer.Dispose();
            throw new ModelRoutingConfigurationException(
                $"ModelRouting:Redis:Configuration: Redis at '{string.Join(", ", configuration.EndPoints)}' could not be reached and ModelRouting:Redis:Required is true.");
        }
        else
        {
            MarkDown("not reachable at start-up");
        }
    }

    /// <summary>Gets the options in force (read once at start-up).</summary>
    public RedisOptions Options { get; }

    /// <summary>Gets whether shared state is configured.</summary>
    public bool Enabled => _multiplexer is not null;

    /// <summary>Gets the multiplexer; null when shared state is off.</summary>
    public ConnectionMultiplexer? Multiplexer => _multiplexer;

    /// <summary>Gets a database, or null when Redis must not be asked now (off, disconnected, or the breaker is open).</summary>
    public IDatabase? TryDatabase()
    {
        if (_multiplexer is null)
        {
            return null;
        }

        var openUntil = Volatile.Read(ref _openUntil);
        if (openUntil != 0)
        {
            if (_time.GetTimestamp() < openUntil || Interlocked.CompareExchange(ref _probing, 1, 0) != 0)
            {
                return null;
            }

            // Half-open: this caller probes; the others keep their fallback until it reports.
            Volatile.Write(ref _openUntil, _time.GetTimestamp() + _breakTicks);
        }

        if (!_multiplexer.IsConnected)
        {
            Failed("not connected");
            return null;
        }

        return _multiplexer.GetDatabase();
    }

    /// <summary>Gets whether Redis may be asked now.</summary>
    public bool IsAvailable => _multiplexer is not null && Volatile.Read(ref _openUntil) == 0 && _multiplexer.IsConnected;

    /// <summary>Reports a successful call: closes the breaker.</summary>
    public void Succeeded()
    {
        if (Volatile.Read(ref _openUntil) != 0 || Volatile.Read(ref _down) != 0)
        {
            Volatile.Write(ref _openUntil, 0);
            Volatile.Write(ref _probing, 0);
            if (Interlocked.Exchange(ref _down, 0) != 0)
            {
                SharedStateLog.Restored(_logger);
            }
        }
    }

    /// <summary>Reports a failed call (timeout, connection error): opens the breaker.</summary>
    public void Failed(string reason)
    {
        Volatile.Write(ref _openUntil, _time.GetTimestamp() + _breakTicks);
        Volatile.Write(ref _probing, 0);
        MarkDown(reason);
    }

    /// <summary>
    /// Gets whether <paramref name="e"/> is Redis being unavailable: no connection, a timeout, or a server that cannot
    /// serve now (loading, busy, a replica). Other server errors (a script that does not compile) are bugs, not outages.
    /// </summary>
    public static bool IsUnavailable(Exception e) => e switch
    {
        RedisServerException server => server.Message.StartsWith("LOADING", StringComparison.Ordinal)
            || server.Message.StartsWith("BUSY", StringComparison.Ordinal)
            || server.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
            || server.Message.StartsWith("READONLY", StringComparison.Ordinal),
        RedisException or TimeoutException or ObjectDisposedException => true,
        _ => false,
    };

    public void Dispose() => _multiplexer?.Dispose();

    private void MarkDown(string reason)
    {
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            SharedStateLog.Unavailable(_logger, reason);
        }
    }
}
