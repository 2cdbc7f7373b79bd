using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Failover;
using ModelRouting.SharedState;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Tests.SharedState;

/// <summary>SPEC §13 and §16: a destination cooling down on one replica is skipped by the others too (real redis-server).</summary>
public sealed class SharedCooldownsTests
{
    private sealed class Replica : IAsyncDisposable
    {
        private readonly RedisConnection _connection;
        private readonly SharedCooldowns _sharing;

        public Replica(string redis)
        {
            _connection = new RedisConnection(
                Options.Create(new ModelRoutingOptions { Redis = new RedisOptions { Configuration = redis, Timeout = TimeSpan.FromSeconds(2) } }), TimeProvider.System, NullLogger<RedisConnection>.Instance);
            _sharing = new SharedCooldowns(Cooldowns, _connection);
        }

        public DestinationCooldowns Cooldowns { get; } = new(TimeProvider.System);

        public Task StartAsync() => _sharing.StartAsync(CancellationToken.None);

        // The sharing service's loop ends once it has subscribed to the notices and read what Redis holds.
        public Task SubscribedAsync() => _sharing.ExecuteTask!.WaitAsync(TimeSpan.FromSeconds(10));

        public async ValueTask DisposeAsync()
        {
            await _sharing.StopAsync(CancellationToken.None);
            _sharing.Dispose();
            _connection.Dispose();
        }
    }

    private static async Task<TimeSpan> UntilAsync(Func<bool> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"not within 5 s: {what}");
            await Task.Delay(10);
        }

        return watch.Elapsed;
    }

    [RedisFact]
    public async Task Cooldown_OnOneReplica_IsSkippedOnTheOther_EndsOnBoth_AndAReplicaStartedLaterReadsIt()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var one = new Replica(redis.Configuration);
        await using var two = new Replica(redis.Configuration);
        await one.StartAsync();
        await two.StartAsync();
        var d1 = new DestinationState("d1");
        await one.SubscribedAsync();
        await two.SubscribedAsync();

        one.Cooldowns.CoolDown("pool", d1, TimeSpan.FromSeconds(30));
        // A notice: milliseconds on a quiet machine; the bound leaves room for a CI machine running other tests at once.
        var took = await UntilAsync(() => two.Cooldowns.Remaining("pool", d1) > TimeSpan.FromSeconds(25), "two skips d1");
        Assert.True(took < TimeSpan.FromSeconds(3), $"took {took}");

        await using (var three = new Replica(redis.Configuration))
        {
            await three.StartAsync();
            await UntilAsync(() => three.Cooldowns.Remaining("pool", d1) > TimeSpan.FromSeconds(20), "a replica started later reads the cooldown from Redis");
        }

        one.Cooldowns.Succeeded("pool", d1);
        await UntilAsync(() => two.Cooldowns.Remaining("pool", d1) == TimeSpan.Zero, "the cooldown ended on one ends on two");
        Assert.Equal(TimeSpan.Zero, one.Cooldowns.Remaining("pool", d1));
    }
}
