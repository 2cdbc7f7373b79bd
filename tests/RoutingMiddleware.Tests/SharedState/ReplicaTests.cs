using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Configuration;
using ModelRouting.Tests.Admin;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;
using static ModelRouting.Tests.Keys.ClientKeyTests;

namespace ModelRouting.Tests.SharedState;

/// <summary>SPEC §16: two gateway replicas sharing one real redis-server act as one.</summary>
public sealed class ReplicaTests
{
    private const string OpsSecret = "sk-ops-0123456789";

    private static JsonObject Deployment(TestBackend pool, string redis, JsonObject? keyLimits = null, bool required = false)
    {
        var modelRouting = AdminTestSupport.AdminSection();
        modelRouting["Keys"] = new JsonArray(Key("ops", OpsSecret, ["*"], (JsonObject?)keyLimits?.DeepClone()));
        // A 2 s command timeout: these tests are about sharing, and on a loaded CI machine 250 ms can pass without an outage.
        modelRouting["Redis"] = new JsonObject { ["Configuration"] = redis, ["Required"] = required, ["Replicas"] = 2, ["Timeout"] = "00:00:02" };
        return TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [pool.Url] },
            [TestGateway.Endpoint("a", "pool", isDefault: true)],
            modelRouting);
    }

    private static async Task<HttpStatusCode> ChatAsync(TestGateway gateway, string secret, string model)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(E2EHelpers.Chat(model), Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        using var response = await gateway.Client.SendAsync(request);
        return response.StatusCode;
    }

    // Polls until the condition holds; returns how long it took (fails after 5 s).
    private static async Task<TimeSpan> UntilAsync(Func<Task<bool>> condition, string what)
    {
        var watch = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"not within 5 s: {what}");
            await Task.Delay(20);
        }

        return watch.Elapsed;
    }

    // A replica that has just started may still be connecting to Redis (on a loaded machine the first connection can
    // outlast its timeout): until then its admin writes answer 503 shared_state_unavailable, as documented.
    private static async Task<string> CreateKeyAsync(TestGateway gateway, string id)
    {
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var (status, created, _) = await gateway.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Id"] = id, ["Models"] = new JsonArray("*") });
            if (status == HttpStatusCode.ServiceUnavailable && watch.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(50);
                continue;
            }

            Assert.True(status == HttpStatusCode.Created, $"{(int)status}: {created?.ToJsonString()}");
            return created!["key"]!.GetValue<string>();
        }
    }

    [RedisFact]
    public async Task AdminChanges_OnOneReplica_AreInForceOnTheOther_WithinOneSecond()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var one = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        await using var two = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));

        var secret = await CreateKeyAsync(one, "team-b");
        var took = await UntilAsync(async () => await ChatAsync(two, secret, "a") == HttpStatusCode.OK, "the key created on one works on two");
        Assert.True(took < TimeSpan.FromSeconds(1), $"took {took}");

        var (status, _, _) = await two.AdminAsync(HttpMethod.Put, AdminTestSupport.EndpointPath("b"), AdminTestSupport.Definition("pool"));
        Assert.Equal(HttpStatusCode.Created, status);
        took = await UntilAsync(async () => await ChatAsync(one, OpsSecret, "b") == HttpStatusCode.OK, "the endpoint registered on two routes on one");
        Assert.True(took < TimeSpan.FromSeconds(1), $"took {took}");

        (status, _, _) = await one.AdminAsync(HttpMethod.Patch, "/admin/keys/team-b", new JsonObject { ["Enabled"] = false });
        Assert.Equal(HttpStatusCode.OK, status);
        took = await UntilAsync(async () => await ChatAsync(two, secret, "a") == HttpStatusCode.Unauthorized, "the key disabled on one is refused on two");
        Assert.True(took < TimeSpan.FromSeconds(1), $"took {took}");

        // Each replica's state file holds the shared overlay as its last-known-good.
        Assert.Contains("team-b", await File.ReadAllTextAsync(Path.Combine(two.Directory, "state.json")), StringComparison.Ordinal);
    }

    [RedisFact]
    public async Task KeyLimit_IsCountedOnceAcrossReplicas()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        var limits = new JsonObject { ["RequestsPerMinute"] = 3 };
        await using var one = await TestGateway.StartAsync(Deployment(pool, redis.Configuration, limits));
        await using var two = await TestGateway.StartAsync(Deployment(pool, redis.Configuration, limits));

        using var logsOne = one.CaptureLogs();
        using var logsTwo = two.CaptureLogs();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            statuses.Add(await ChatAsync(i % 2 == 0 ? one : two, OpsSecret, "a"));
        }

        var logs = string.Join("\n", logsOne.Entries.Concat(logsTwo.Entries).Where(e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Information).Select(e => $"{e.EventName}: {e.Message}"));
        Assert.True(3 == statuses.Count(s => s == HttpStatusCode.OK), string.Join(",", statuses.Select(s => (int)s)) + "\n" + logs);
        Assert.Equal(5, statuses.Count(s => s == HttpStatusCode.TooManyRequests));
    }

    [RedisFact]
    public async Task KeyLimit_UnderConcurrentLoad_HoldsAcrossReplicas_AdmittingFromAllotments()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        var limits = new JsonObject { ["RequestsPerMinute"] = 60, ["TokensPerMinute"] = 1_000_000 };
        await using var one = await TestGateway.StartAsync(Deployment(pool, redis.Configuration, limits));
        await using var two = await TestGateway.StartAsync(Deployment(pool, redis.Configuration, limits));

        // Both replicas connected to Redis first (an admin write goes through only then): a replica still connecting
        // counts in process, at its share of the limit, which is not what this test is about.
        await CreateKeyAsync(one, "connected-1");
        await CreateKeyAsync(two, "connected-2");

        // 16 clients over the two replicas, 240 requests as fast as they come: busy enough for allotments.
        var statuses = new System.Collections.Concurrent.ConcurrentBag<HttpStatusCode>();
        var sent = 0;
        await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
        {
            while (Interlocked.Increment(ref sent) <= 240)
            {
                statuses.Add(await ChatAsync(i % 2 == 0 ? one : two, OpsSecret, "a"));
            }
        })));

        var admitted = statuses.Count(s => s == HttpStatusCode.OK);
        var fromAllotments = new[] { one, two }.Sum(g => ((ModelRouting.SharedState.RedisQuotaStore)g.Services.GetRequiredService<ModelRouting.Quotas.IQuotaStore>()).AdmittedFromAllotments);
        var summary = $"admitted {admitted} ({fromAllotments} from allotments), statuses {string.Join(",", statuses.Distinct())}";
        Assert.True(admitted is >= 55 and <= 60, summary); // never more than 60; what one replica holds, the other cannot use for a moment
        Assert.True(fromAllotments > 0, summary);
        Assert.Equal(240, admitted + statuses.Count(s => s == HttpStatusCode.TooManyRequests));
    }

    [RedisFact]
    public async Task RedisKilled_RequestsFlow_AdminWrites503_RedisBack_ChangesPropagateWithoutRestart()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var one = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        await using var two = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        var before = await CreateKeyAsync(one, "before");
        await UntilAsync(async () => await ChatAsync(two, before, "a") == HttpStatusCode.OK, "propagated before the outage");

        await redis.KillAsync();
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(HttpStatusCode.OK, await ChatAsync(i % 2 == 0 ? one : two, before, "a"));
        }

        var (status, body, response) = await one.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Id"] = "during", ["Models"] = new JsonArray("*") });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("shared_state_unavailable", body!["error"]!["code"]!.GetValue<string>());
        Assert.NotNull(response.Headers.RetryAfter);
        var (list, listed, _) = await one.AdminAsync(HttpMethod.Get, "/admin/keys");
        Assert.Equal(HttpStatusCode.OK, list);
        Assert.DoesNotContain("during", listed!.ToJsonString(), StringComparison.Ordinal);

        // Redis comes back empty (no persistence): a replica seeds it with the overlay it has, and changes flow again.
        await redis.RestartAsync();
        string? after = null;
        await UntilAsync(async () =>
        {
            var (created, node, _) = await one.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Id"] = "after", ["Models"] = new JsonArray("*") });
            after = created == HttpStatusCode.Created ? node!["key"]!.GetValue<string>() : null;
            return after is not null;
        }, "admin writes accepted once Redis is back");
        var took = await UntilAsync(async () => await ChatAsync(two, after!, "a") == HttpStatusCode.OK, "the key created after the outage works on two");
        Assert.True(took < TimeSpan.FromSeconds(1), $"took {took}");
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(two, before, "a"));
    }

    [RedisFact]
    public async Task Usage_IsEveryReplicasAddedUp_OnEither_KeptAfterAReplicaStops_ThisProcessesWhileRedisIsDown()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var one = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        var two = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        try
        {
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(HttpStatusCode.OK, await ChatAsync(i < 3 ? one : two, OpsSecret, "a"));
            }

            // Each replica writes its totals every second, and the one asked writes its own first.
            JsonNode? usage = null;
            await UntilAsync(async () =>
            {
                usage = (await two.AdminAsync(HttpMethod.Get, "/admin/usage")).Body;
                return usage?["keys"]?["ops"]?["requests"]?.GetValue<long>() == 5;
            }, "five requests in the usage read on two");
            Assert.Equal("replicas", usage!["scope"]!.GetValue<string>());
            Assert.Equal(5, usage["endpoints"]!["a"]!["requests"]!.GetValue<long>());
            var prompt = usage["keys"]!["ops"]!["prompt_tokens"]!.GetValue<long>();
            Assert.True(prompt > 0, usage.ToJsonString());
            var onOne = (await one.AdminAsync(HttpMethod.Get, "/admin/usage")).Body!;
            Assert.Equal(usage["keys"]!.ToJsonString(), onOne["keys"]!.ToJsonString());
        }
        finally
        {
            await two.DisposeAsync();
        }

        // What two served stays counted after it stopped; a new replica's totals add to it, not over it.
        await using var three = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(three, OpsSecret, "a"));
        await UntilAsync(async () => (await three.AdminAsync(HttpMethod.Get, "/admin/usage")).Body?["keys"]?["ops"]?["requests"]?.GetValue<long>() == 6,
            "six requests once a third replica served one");

        // Two folded its fields into the base ones when it stopped: one's, three's and the base are left.
        await using (var client = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration))
        {
            var fields = (await client.GetDatabase().HashGetAllAsync("model-gateway:usage:key:ops")).Select(f => ((string)f.Name!).Split(':')[0]).Distinct().ToList();
            Assert.Equal(3, fields.Count);
            Assert.Contains("base", fields);
        }

        // Redis down: this process's own totals, said to be so.
        await redis.KillAsync();
        var (status, local, _) = await one.AdminAsync(HttpMethod.Get, "/admin/usage");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("process", local!["scope"]!.GetValue<string>());
        Assert.Equal(3, local["keys"]!["ops"]!["requests"]!.GetValue<long>());

        // Redis back empty (no persistence): the running replicas write all their totals again (two's are gone with it).
        await redis.RestartAsync();
        await UntilAsync(async () =>
        {
            var body = (await one.AdminAsync(HttpMethod.Get, "/admin/usage")).Body;
            return body?["scope"]?.GetValue<string>() == "replicas" && body["keys"]?["ops"]?["requests"]?.GetValue<long>() == 4
                && body["endpoints"]?["a"]?["requests"]?.GetValue<long>() == 4;
        }, "one's 3 and three's 1 back in Redis");
    }

    [RedisFact]
    public async Task UsageWrite_RefusedByRedis_IsLogged_TheGatewayKeepsServing_AndUsageIsThisProcesses()
    {
        await using var redis = await RedisServer.StartAsync();
        await using (var client = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration))
        {
            await client.GetDatabase().StringSetAsync("model-gateway:usage:key:ops", "not a hash"); // HSET answers WRONGTYPE
        }

        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var gateway = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        using var logs = gateway.CaptureLogs();

        Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, OpsSecret, "a"));
        var (status, usage, _) = await gateway.AdminAsync(HttpMethod.Get, "/admin/usage");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("process", usage!["scope"]!.GetValue<string>());
        Assert.Equal(1, usage["keys"]!["ops"]!["requests"]!.GetValue<long>());
        Assert.Contains(logs.Entries, e => e.EventName == "SharedUsageFailed" && e.Message.Contains("WRONGTYPE", StringComparison.Ordinal));

        // Once Redis takes the writes again, everything is written (not only what changed since the failure).
        await using (var client = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.Configuration))
        {
            await client.GetDatabase().KeyDeleteAsync("model-gateway:usage:key:ops");
        }

        Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, OpsSecret, "a"));
        await UntilAsync(async () =>
        {
            var body = (await gateway.AdminAsync(HttpMethod.Get, "/admin/usage")).Body;
            return body?["scope"]?.GetValue<string>() == "replicas" && body["keys"]?["ops"]?["requests"]?.GetValue<long>() == 2
                && body["endpoints"]?["a"]?["requests"]?.GetValue<long>() == 2;
        }, "both requests in the shared usage once Redis takes the writes");
        // Retried every second, logged at most once per 10 s (twice if this test outlasted 10 s on a loaded machine).
        Assert.InRange(logs.Entries.Count(e => e.EventName == "SharedUsageFailed"), 1, 2);
    }

    [RedisFact]
    public async Task CorruptOverlayInRedis_IsRefused_LastGoodKept_AndAnAdminWriteReplacesIt()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        await using var one = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        using var logs = one.CaptureLogs();
        var secret = await CreateKeyAsync(one, "team-b");

        // Document and version changed in one step, as a writer would (apart, a check in between could take the new
        // version with the old document and never look again).
        Assert.StartsWith(":", await redis.CommandAsync(
            "EVAL", "redis.call('HSET', KEYS[1], 'doc', ARGV[1]) return redis.call('HINCRBY', KEYS[1], 'v', 1)", "1",
            "model-gateway:overlay", "{\"Version\":1,\"Endpoints\":[{\"Definition\":{}}],\"Keys\":[]}"), StringComparison.Ordinal);
        await redis.CommandAsync("PUBLISH", "model-gateway:overlay:changed", "x:99");
        await UntilAsync(() => Task.FromResult(logs.Entries.Any(e => e.EventName == "SharedOverlayRefused")), "the corrupt document is refused");
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(one, secret, "a")); // the key (from the last good) still works

        var (status, _, _) = await one.AdminAsync(HttpMethod.Patch, "/admin/keys/team-b", new JsonObject { ["Enabled"] = false });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(one, secret, "a"));
        await using var two = await TestGateway.StartAsync(Deployment(pool, redis.Configuration));
        Assert.Equal(HttpStatusCode.Unauthorized, await ChatAsync(two, secret, "a")); // the repaired document is the shared one
    }

    [RedisFact]
    public async Task UnreachableRedis_FailsStartUp_OnlyWhenRequired()
    {
        await using var pool = await TestBackend.StartAsync("pool", OpenAIChatResponder("hi"));
        var closed = $"127.0.0.1:{E2EHelpers.ClosedLoopbackPort()}";
        var e = await Assert.ThrowsAnyAsync<Exception>(() => TestGateway.StartAsync(Deployment(pool, closed, required: true)));
        var configurationError = e as ModelRoutingConfigurationException ?? e.InnerException as ModelRoutingConfigurationException;
        Assert.NotNull(configurationError);
        Assert.Contains("Redis:Required", configurationError.Message, StringComparison.Ordinal);

        await using var gateway = await TestGateway.StartAsync(Deployment(pool, closed));
        Assert.Equal(HttpStatusCode.OK, await ChatAsync(gateway, OpsSecret, "a"));
        var (status, body, _) = await gateway.AdminAsync(HttpMethod.Post, "/admin/keys", new JsonObject { ["Id"] = "x", ["Models"] = new JsonArray("*") });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("shared_state_unavailable", body!["error"]!["code"]!.GetValue<string>());
    }
}
