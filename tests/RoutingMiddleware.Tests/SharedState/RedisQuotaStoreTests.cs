using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;
using ModelRouting.Quotas;
using ModelRouting.SharedState;

namespace ModelRouting.Tests.SharedState;

/// <summary>SPEC §16: the Redis quota store against a real redis-server, two stores standing for two replicas.</summary>
public sealed class RedisQuotaStoreTests
{
    private static RedisConnection Connect(string configuration, bool failClosed = false, int replicas = 1) =>
        new(Options.Create(new ModelRoutingOptions { Redis = new RedisOptions { Configuration = configuration, FailClosed = failClosed, Replicas = replicas, Timeout = TimeSpan.FromSeconds(2) } }),
            TimeProvider.System, NullLogger<RedisConnection>.Instance);

    private static RedisQuotaStore Store(RedisConnection connection) => new(connection, TimeProvider.System, NullLogger<RedisQuotaStore>.Instance);

    private static QuotaScope Scope(string id, int? rpm = null, long? tpm = null, int? concurrent = null) => new(id, new RateLimits(rpm, tpm, concurrent));

    [RedisFact]
    public async Task Admit_RequestsPerMinute_HoldsAcrossTwoStores_AllOrNothing()
    {
        await using var redis = await RedisServer.StartAsync();
        using var a = Connect(redis.Configuration);
        using var b = Connect(redis.Configuration);
        var key = Scope("key:k", rpm: 3);
        var endpoint = Scope("endpoint:e", rpm: 100);

        var admitted = 0;
        for (var i = 0; i < 6; i++)
        {
            var decision = await Store(i % 2 == 0 ? a : b).AdmitAsync(new QuotaRequest(key, endpoint, 10), CancellationToken.None);
            admitted += decision.Admitted ? 1 : 0;
            if (!decision.Admitted)
            {
                Assert.Equal("requests", decision.RefusedBy);
                Assert.Contains("key:k", decision.Reason, StringComparison.Ordinal);
                Assert.InRange(decision.RetryAfter, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(60.25));
                Assert.Equal(0, decision.Snapshot.RemainingRequests);
            }
        }

        Assert.Equal(3, admitted);

        // The refusals took nothing from the endpoint: 3 counted there, not 6.
        var other = await Store(a).AdmitAsync(new QuotaRequest(null, endpoint, 0), CancellationToken.None);
        Assert.Equal(100 - 4, other.Snapshot.RemainingRequests);
        Assert.Equal(100, other.Snapshot.LimitRequests);
    }

    [RedisFact]
    public async Task Complete_CorrectsTheReservation_AndFreesTheConcurrencySlot()
    {
        await using var redis = await RedisServer.StartAsync();
        using var connection = Connect(redis.Configuration);
        var store = Store(connection);
        var key = Scope("key:k", tpm: 1000, concurrent: 1);

        var first = await store.AdmitAsync(new QuotaRequest(key, null, 800), CancellationToken.None);
        Assert.True(first.Admitted);
        Assert.Equal(200, first.Snapshot.RemainingTokens);
        var second = await store.AdmitAsync(new QuotaRequest(key, null, 10), CancellationToken.None);
        Assert.False(second.Admitted); // one concurrent request
        Assert.Contains("concurrent", second.Reason, StringComparison.Ordinal);

        await store.CompleteAsync(first.Lease!, usedTokens: 100);
        await store.FlushedAsync(); // completions are sent in the background
        var third = await store.AdmitAsync(new QuotaRequest(key, null, 850), CancellationToken.None);
        Assert.True(third.Admitted); // 100 used + 850 ≤ 1000: the 800 reserved were corrected to 100
        Assert.Equal(50, third.Snapshot.RemainingTokens);

        var tooLarge = await store.AdmitAsync(new QuotaRequest(Scope("key:other", tpm: 10), null, 11), CancellationToken.None);
        Assert.Equal("tokens", tooLarge.RefusedBy);
        Assert.Contains("too large", tooLarge.Reason, StringComparison.Ordinal);
    }

    [RedisFact]
    public async Task ReleaseEndpoint_FreesTheEndpointsSlotAndTokens_AtOnce_TheKeyStaysHeldUntilCompletion()
    {
        await using var redis = await RedisServer.StartAsync();
        using var connection = Connect(redis.Configuration);
        var store = Store(connection);
        var key = Scope("key:k", tpm: 1000, concurrent: 3);
        var endpoint = Scope("endpoint:dead", tpm: 500, concurrent: 1);

        var first = await store.AdmitAsync(new QuotaRequest(key, endpoint, 400), CancellationToken.None);
        Assert.True(first.Admitted);
        await store.ReleaseEndpointAsync(first.Lease!); // failed over to another endpoint
        await store.ReleaseEndpointAsync(first.Lease!); // once only
        await store.FlushedAsync();

        var second = await store.AdmitAsync(new QuotaRequest(key, endpoint, 500), CancellationToken.None);
        Assert.True(second.Admitted, second.Reason); // the endpoint's slot and its 400 tokens are back
        Assert.Equal(0, second.Snapshot.RemainingTokens); // the endpoint's 500 of 500, the tightest
        var over = await store.AdmitAsync(new QuotaRequest(key, null, 101), CancellationToken.None);
        Assert.Equal("tokens", over.RefusedBy); // the key still holds the first request's 400: 400 + 500 + 101 > 1000

        await store.CompleteAsync(first.Lease!, usedTokens: 300); // corrects the key alone: 300 + 500
        await store.FlushedAsync();
        var third = await store.AdmitAsync(new QuotaRequest(null, endpoint, 0), CancellationToken.None);
        Assert.False(third.Admitted); // the second request holds the endpoint's one slot: the release did not free it twice
        Assert.Contains("concurrent", third.Reason, StringComparison.Ordinal);
        Assert.Equal(0, third.Snapshot.RemainingTokens); // 500 of 500: nothing of the first request is counted there
        var fourth = await store.AdmitAsync(new QuotaRequest(key, null, 200), CancellationToken.None);
        Assert.True(fourth.Admitted, fourth.Reason);
        Assert.Equal(0, fourth.Snapshot.RemainingTokens); // 300 + 500 + 200 of 1000
    }

    [RedisFact]
    public async Task RedisDown_FallsBackInProcess_AtLimitDividedByReplicas_ThenUsesRedisAgain()
    {
        await using var redis = await RedisServer.StartAsync();
        using var connection = Connect(redis.Configuration, replicas: 3);
        var store = Store(connection);
        var key = Scope("key:k", rpm: 6);
        Assert.True((await store.AdmitAsync(new QuotaRequest(key, null, 1), CancellationToken.None)).Admitted);

        await redis.KillAsync();
        var admitted = 0;
        for (var i = 0; i < 5; i++)
        {
            admitted += (await store.AdmitAsync(new QuotaRequest(key, null, 1), CancellationToken.None)).Admitted ? 1 : 0;
        }

        Assert.Equal(1, admitted); // 6 ÷ 3 in this process, one of which this replica admitted through Redis before

        await redis.RestartAsync(); // empty: no persistence
        var decision = await E2EPoll(async () => await store.AdmitAsync(new QuotaRequest(key, null, 1), CancellationToken.None), d => d.Lease?.Shared == true);
        Assert.True(decision.Lease?.Shared);
        // Counted in Redis again, from empty: 5 left, or 4 when a probe's admission ran in Redis but answered after
        // the timeout (the first script call after a restart loads the script; the full suite loads the machine).
        Assert.InRange(decision.Snapshot.RemainingRequests, 4, 5);
    }

    [RedisFact]
    public async Task RedisDown_FailClosed_Refuses()
    {
        await using var redis = await RedisServer.StartAsync();
        using var connection = Connect(redis.Configuration, failClosed: true);
        var store = Store(connection);
        await redis.KillAsync();
        var decision = await store.AdmitAsync(new QuotaRequest(Scope("key:k", rpm: 100), null, 1), CancellationToken.None);
        Assert.False(decision.Admitted);
        Assert.Contains("FailClosed", decision.Reason, StringComparison.Ordinal);
    }

    [RedisFact]
    public async Task Window_UsesRedisClock_AndExpiresSixtySecondsLater()
    {
        await using var redis = await RedisServer.StartAsync();
        using var connection = Connect(redis.Configuration);
        var store = Store(connection);

        // A slot written 60.5 s ago by Redis's clock has left the window; one written 50 s ago has not (10 s of slack for a loaded machine).
        var now = await RedisMillisecondsAsync(redis);
        var field = (long ms) => ((now - ms) / 250).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await redis.CommandAsync("HSET", "model-gateway:q:key:k:r", field(60_500), "5", field(50_000), "2", "sum", "7", "exp", field(62_000), "last", field(50_000));
        var decision = await store.AdmitAsync(new QuotaRequest(Scope("key:k", rpm: 4), null, 0), CancellationToken.None);
        Assert.True(decision.Admitted);
        Assert.Equal(1, decision.Snapshot.RemainingRequests); // 2 + this one of 4
        Assert.InRange(decision.Snapshot.ResetRequests, TimeSpan.FromSeconds(59), TimeSpan.FromSeconds(60.25));
    }

    [RedisFact]
    public async Task BusyScopes_AdmitFromAllotments_AndTwoStoresTogetherNeverExceedTheLimits()
    {
        await using var redis = await RedisServer.StartAsync();
        using var replicas = new TwoReplicas(redis.Configuration);
        var (first, second) = (replicas.First, replicas.Second);
        var key = Scope("key:k", rpm: 1000, tpm: 5000); // 100 requests of 50 tokens
        var endpoint = Scope("endpoint:e", rpm: 150);

        // 16 callers per store, 300 admissions in all, as fast as they come: far more than 4 a quarter second each.
        // Never more than the key's 5,000 tokens (all or nothing with the endpoint); and all of them in the end.
        var request = new QuotaRequest(key, endpoint, 50);
        var admitted = 0;
        Func<RedisQuotaStore, QuotaLease, Task> complete = async (store, lease) =>
        {
            Interlocked.Increment(ref admitted);
            await store.CompleteAsync(lease, 50);
        };
        await HammerAsync(replicas, 32, 300, request, complete);
        Assert.InRange(admitted, 1, 100);
        await TopUpAsync(replicas, () => admitted, 100, request, complete);
        Assert.False((await first.AdmitAsync(request, CancellationToken.None)).Admitted);
        Assert.False((await second.AdmitAsync(request, CancellationToken.None)).Admitted);

        await first.ReturnAllotmentsAsync();
        await second.ReturnAllotmentsAsync();
        var counted = $"admitted {admitted}, from allotments {first.AdmittedFromAllotments + second.AdmittedFromAllotments}; in Redis: "
            + $"key tokens {await WindowSumAsync(redis, "key:k:t")}, key requests {await WindowSumAsync(redis, "key:k:r")}, endpoint requests {await WindowSumAsync(redis, "endpoint:e:r")}";
        Assert.True(admitted == 100, counted);
        Assert.True(first.AdmittedFromAllotments + second.AdmittedFromAllotments > 0, counted);
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        Assert.True((admitted * 50).ToString(inv) == await WindowSumAsync(redis, "key:k:t"), counted);
        Assert.True(admitted.ToString(inv) == await WindowSumAsync(redis, "key:k:r"), counted);
        Assert.True(admitted.ToString(inv) == await WindowSumAsync(redis, "endpoint:e:r"), counted);
    }

    [RedisFact]
    public async Task Allotments_AreGivenBack_WhenTheirSlotEnds_AndCorrectionsLandInTheirSlot()
    {
        await using var redis = await RedisServer.StartAsync();
        using var connection = Connect(redis.Configuration);
        using var store = Store(connection);
        var key = Scope("key:k", rpm: 100_000, tpm: 10_000_000, concurrent: 1000);

        var leases = new List<QuotaLease>();
        for (var i = 0; i < 40; i++)
        {
            var decision = await store.AdmitAsync(new QuotaRequest(key, null, 100), CancellationToken.None);
            Assert.True(decision.Admitted);
            leases.Add(decision.Lease!);
        }

        // Some of them came from an allotment, so Redis counted more than 40 requests while it was held.
        Assert.True(store.AdmittedFromAllotments > 0);
        Assert.True(long.Parse(await WindowSumAsync(redis, "key:k:r"), System.Globalization.CultureInfo.InvariantCulture) > 40);
        foreach (var lease in leases)
        {
            await store.CompleteAsync(lease, 30); // each used 30 of its 100
        }

        // Without any more traffic the store gives the allotment back by itself once its quarter second has ended.
        await UntilAsync(async () => await WindowSumAsync(redis, "key:k:r") == "40");
        await store.FlushedAsync();
        await UntilAsync(async () => await WindowSumAsync(redis, "key:k:t") == "1200");
        await UntilAsync(async () => (await redis.ReplyAsync("GET", "model-gateway:q:key:k:c"))[0] == "$-1"); // no slot held
    }

    [RedisFact]
    public async Task ConcurrencyAllotments_HoldTheLimitAcrossTwoStores()
    {
        await using var redis = await RedisServer.StartAsync();
        using var replicas = new TwoReplicas(redis.Configuration);
        var (first, second) = (replicas.First, replicas.Second);
        var key = Scope("key:k", concurrent: 40);

        // None completes: 40 in flight at most in both stores together, and all 40 in the end.
        var request = new QuotaRequest(key, null, 1);
        var held = new System.Collections.Concurrent.ConcurrentBag<(RedisQuotaStore Store, QuotaLease Lease)>();
        Func<RedisQuotaStore, QuotaLease, Task> hold = (store, lease) =>
        {
            held.Add((store, lease));
            return Task.CompletedTask;
        };
        await HammerAsync(replicas, 16, 200, request, hold);
        Assert.InRange(held.Count, 1, 40);
        await TopUpAsync(replicas, () => held.Count, 40, request, hold);
        Assert.Equal(40, held.Count);
        Assert.False((await first.AdmitAsync(request, CancellationToken.None)).Admitted);
        Assert.False((await second.AdmitAsync(request, CancellationToken.None)).Admitted);
        foreach (var (store, lease) in held)
        {
            await store.CompleteAsync(lease, 1);
        }

        await first.ReturnAllotmentsAsync();
        await second.ReturnAllotmentsAsync();
        await UntilAsync(async () => (await redis.ReplyAsync("GET", "model-gateway:q:key:k:c"))[0] == "$-1");
        Assert.True((await first.AdmitAsync(new QuotaRequest(key, null, 1), CancellationToken.None)).Admitted);
    }

    // Callers alternating between two stores ask for admissions as fast as they come, until `offers` have been asked for.
    private static Task HammerAsync(TwoReplicas replicas, int callers, int offers, QuotaRequest request, Func<RedisQuotaStore, QuotaLease, Task> admitted)
    {
        var offered = 0;
        return Task.WhenAll(Enumerable.Range(0, callers).Select(i => Task.Run(async () =>
        {
            var store = i % 2 == 0 ? replicas.First : replicas.Second;
            while (Interlocked.Increment(ref offered) <= offers)
            {
                if ((await store.AdmitAsync(request, CancellationToken.None)).Lease is { } lease)
                {
                    await admitted(store, lease);
                }
            }
        })));
    }

    // After a rush: asks again, one at a time and alternating stores, until `limit` are admitted (or 10 s). What a
    // store held of an allotment in the rush is given back when its quarter second ends, so nothing is lost for good.
    private static async Task TopUpAsync(TwoReplicas replicas, Func<int> admitted, int limit, QuotaRequest request, Func<RedisQuotaStore, QuotaLease, Task> onAdmitted)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        for (var i = 0; admitted() < limit && DateTime.UtcNow < deadline; i++)
        {
            var store = i % 2 == 0 ? replicas.First : replicas.Second;
            if ((await store.AdmitAsync(request, CancellationToken.None)).Lease is { } lease)
            {
                await onAdmitted(store, lease);
            }
            else
            {
                await Task.Delay(20);
            }
        }
    }

    private static async Task<string> WindowSumAsync(RedisServer redis, string key) =>
        (await redis.ReplyAsync("HGET", "model-gateway:q:" + key, "sum"))[1];

    private static async Task UntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met within 10 s");
            await Task.Delay(20);
        }
    }

    // Redis's clock (TIME: seconds and microseconds), read without the store's 250 ms timeout.
    private static async Task<long> RedisMillisecondsAsync(RedisServer redis)
    {
        var reply = await redis.ReplyAsync("TIME"); // *2, $n, seconds, $n, microseconds
        return (long.Parse(reply[2], System.Globalization.CultureInfo.InvariantCulture) * 1000) + (long.Parse(reply[4], System.Globalization.CultureInfo.InvariantCulture) / 1000);
    }

    private static async Task<T> E2EPoll<T>(Func<Task<T>> probe, Func<T, bool> done)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var value = await probe();
            if (done(value) || DateTime.UtcNow > deadline)
            {
                return value;
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Two stores on their own connections to one Redis, standing for two replicas (<c>Replicas: 2</c>).</summary>
    private sealed class TwoReplicas : IDisposable
    {
        private readonly RedisConnection _a;
        private readonly RedisConnection _b;

        public TwoReplicas(string configuration)
        {
            (_a, _b) = (Connect(configuration, replicas: 2), Connect(configuration, replicas: 2));
            (First, Second) = (Store(_a), Store(_b));
        }

        public RedisQuotaStore First { get; }

        public RedisQuotaStore Second { get; }

        public void Dispose()
        {
            First.Dispose();
            Second.Dispose();
            _a.Dispose();
            _b.Dispose();
        }
    }
}
