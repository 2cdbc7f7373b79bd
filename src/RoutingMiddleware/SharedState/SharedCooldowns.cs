using Microsoft.Extensions.Hosting;
using ModelRouting.Failover;
using StackExchange.Redis;

namespace ModelRouting.SharedState;

/// <summary>
/// Shares destination cooldowns (SPEC §13) between replicas (SPEC §16): a cooldown started here is written to Redis
/// (a key per destination, expiring with the cooldown) and announced on a channel; cooldowns announced by other
/// replicas are applied to this process's <see cref="DestinationCooldowns"/>, and the keys are read at start-up and
/// whenever Redis comes back. The request path never waits on Redis: it reads the local cooldowns, and the writes
/// are fire-and-forget. A notice lost while Redis is down only means a replica finds a dead destination itself.
/// </summary>
internal sealed class SharedCooldowns(DestinationCooldowns cooldowns, RedisConnection connection) : BackgroundService
{
    private const char Separator = '\n';
    private readonly string _origin = Guid.NewGuid().ToString("N");
    private readonly string _prefix = connection.Options.KeyPrefix + "cooldown:";
    private readonly RedisChannel _channel = RedisChannel.Literal(connection.Options.KeyPrefix + "cooldowns");

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (connection.Multiplexer is not { } multiplexer)
        {
            return;
        }

        cooldowns.CooledDown += OnCooledDown;
        cooldowns.Ended += OnEnded;
        multiplexer.ConnectionRestored += (_, _) => _ = LoadAsync(multiplexer);
        var subscribed = false;
        while (!subscribed && !stoppingToken.IsCancellationRequested)
        {
            try
            {
                await multiplexer.GetSubscriber().SubscribeAsync(_channel, (_, message) => OnNotice(message));
                subscribed = true;
                await LoadAsync(multiplexer);
            }
            catch (Exception e) when (RedisConnection.IsUnavailable(e))
            {
                try
                {
                    await Task.Delay(connection.Options.PollInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    public override Task StopAsync(CancellationToken cancellationToken)
    {
        cooldowns.CooledDown -= OnCooledDown;
        cooldowns.Ended -= OnEnded;
        return base.StopAsync(cancellationToken);
    }

    // Reads every cooldown still in Redis (a replica that starts, or reconnects, during one).
    private async Task LoadAsync(ConnectionMultiplexer multiplexer)
    {
        try
        {
            var database = multiplexer.GetDatabase();
            foreach (var server in multiplexer.GetServers())
            {
                await foreach (var key in server.KeysAsync(pattern: _prefix + "*"))
                {
                    var ttl = await database.KeyTimeToLiveAsync(key);
                    var name = ((string)key!)[_prefix.Length..];
                    var separator = name.IndexOf(Separator, StringComparison.Ordinal);
                    if (ttl is { } period && period > TimeSpan.Zero && separator > 0)
                    {
                        cooldowns.Apply(name[..separator], name[(separator + 1)..], period);
                    }
                }
            }
        }
        catch (Exception e) when (RedisConnection.IsUnavailable(e))
        {
            // Read again when Redis comes back.
        }
    }

    private void OnCooledDown(string cluster, string destination, TimeSpan period)
    {
        if (!connection.IsAvailable)
        {
            return;
        }

        var milliseconds = (long)Math.Ceiling(period.TotalMilliseconds);
        var database = connection.Multiplexer!.GetDatabase();
        database.StringSet(_prefix + cluster + Separator + destination, milliseconds, period, flags: CommandFlags.FireAndForget);
        database.Publish(_channel, string.Join(Separator, _origin, cluster, destination, milliseconds), CommandFlags.FireAndForget);
    }

    private void OnEnded(string cluster, string destination)
    {
        if (!connection.IsAvailable)
        {
            return;
        }

        var database = connection.Multiplexer!.GetDatabase();
        database.KeyDelete(_prefix + cluster + Separator + destination, CommandFlags.FireAndForget);
        database.Publish(_channel, string.Join(Separator, _origin, cluster, destination, "end"), CommandFlags.FireAndForget);
    }

    private void OnNotice(RedisValue message)
    {
        var parts = ((string?)message)?.Split(Separator);
        if (parts is not { Length: 4 } || parts[0] == _origin)
        {
            return;
        }

        if (parts[3] == "end")
        {
            cooldowns.Lift(parts[1], parts[2]);
        }
        else if (long.TryParse(parts[3], out var milliseconds) && milliseconds > 0)
        {
            cooldowns.Apply(parts[1], parts[2], TimeSpan.FromMilliseconds(milliseconds));
        }
    }
}
