using System.Net;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Backends;

/// <summary>SPEC §12 "Credentials": a client's Authorization / api-key never reaches a backend; a cluster's backend key does.</summary>
public sealed class BackendCredentialTests
{
    private const string ClientKey = "client-secret-123";

    private static JsonObject TwoClusters(TestBackend front, TestBackend pool, JsonObject? backends = null)
    {
        var modelRouting = new JsonObject { ["PassThroughPaths"] = new JsonArray("/v1/files") };
        if (backends is not null)
        {
            modelRouting["Backends"] = backends;
        }

        return TestGateway.Config(
            new Dictionary<string, string[]> { ["front"] = [front.Url], ["pool"] = [pool.Url] },
            [TestGateway.Endpoint("front-model", "front", isDefault: true), TestGateway.Endpoint("pooled", "pool", upstream: "up")],
            modelRouting);
    }

    private static HttpRequestMessage WithClientKeys(HttpMethod method, string path, string? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }

        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + ClientKey);
        request.Headers.TryAddWithoutValidation("api-key", ClientKey);
        return request;
    }

    private static void AssertNoClientKey(RecordedRequest seen)
    {
        Assert.False(seen.Headers.ContainsKey("api-key"), "the client's api-key reached the backend");
        Assert.DoesNotContain(seen.Headers, h => h.Value.Contains(ClientKey, StringComparison.Ordinal));
    }

    [Fact]
    public async Task ProxiedRequest_ClusterWithKey_BackendGetsItsKeyAndNeverTheClients()
    {
        await using var front = await TestBackend.StartAsync("front");
        await using var pool = await TestBackend.StartAsync("pool");
        await using var gateway = await TestGateway.StartAsync(TwoClusters(front, pool, new JsonObject { ["pool"] = new JsonObject { ["ApiKey"] = "pool-key" } }));

        // "pooled" is reassigned from the route's cluster (front) to pool through a generated clone route.
        using (var response = await gateway.Client.SendAsync(WithClientKeys(HttpMethod.Post, "/v1/chat/completions", E2EHelpers.Chat("pooled"))))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var seen = Assert.Single(pool.Requests);
        Assert.Equal("Bearer pool-key", seen.Headers["Authorization"]);
        AssertNoClientKey(seen);

        // The route's own cluster has no key: no Authorization at all.
        using (var response = await gateway.Client.SendAsync(WithClientKeys(HttpMethod.Post, "/v1/chat/completions", E2EHelpers.Chat("front-model"))))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var direct = Assert.Single(front.Requests);
        Assert.False(direct.Headers.ContainsKey("Authorization"), "a cluster without a key got an Authorization header");
        AssertNoClientKey(direct);
    }

    [Fact]
    public async Task PassThroughRequest_ClientKeysRemoved_RouteClusterKeySent()
    {
        await using var front = await TestBackend.StartAsync("front");
        await using var pool = await TestBackend.StartAsync("pool");

        // The key comes from the command line and names the cluster in another case: configuration keys ignore case.
        await using var gateway = await TestGateway.StartAsync(TwoClusters(front, pool), "--ModelRouting:Backends:FRONT:ApiKey=front-key");

        using (var response = await gateway.Client.SendAsync(WithClientKeys(HttpMethod.Get, "/v1/files?purpose=x")))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var seen = Assert.Single(front.Requests);
        Assert.Equal("/v1/files?purpose=x", seen.Path);
        Assert.Equal("Bearer front-key", seen.Headers["Authorization"]);
        AssertNoClientKey(seen);
    }

    [Fact]
    public async Task EnvironmentKey_IsSent()
    {
        // A cluster id of its own, so the process-wide variable cannot affect another test's gateway.
        var cluster = "env-" + Guid.NewGuid().ToString("N")[..8];
        await using var backend = await TestBackend.StartAsync("env");
        var variable = $"ModelRouting__Backends__{cluster}__ApiKey";
        Environment.SetEnvironmentVariable(variable, "env-key");
        TestGateway gateway;
        try
        {
            gateway = await TestGateway.StartAsync(TestGateway.Config(
                new Dictionary<string, string[]> { [cluster] = [backend.Url] }, [TestGateway.Endpoint("m", cluster, isDefault: true)]));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }

        await using (gateway)
        {
            Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m"));
        }

        Assert.Equal("Bearer env-key", Assert.Single(backend.Requests).Headers["Authorization"]);
    }

    [Fact]
    public async Task KeyChangedInConfiguration_FollowsReload_UnknownClusterWarnedWithoutKey()
    {
        await using var front = await TestBackend.StartAsync("front");
        await using var pool = await TestBackend.StartAsync("pool");
        var config = TwoClusters(front, pool, new JsonObject { ["pool"] = new JsonObject { ["ApiKey"] = "old-key" } });
        await using var gateway = await TestGateway.StartAsync(config);
        var logs = gateway.CaptureLogs();
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("pooled"));
        Assert.Equal("Bearer old-key", pool.Requests.Last().Headers["Authorization"]);

        config["ModelRouting"]!["Backends"] = new JsonObject
        {
            ["pool"] = new JsonObject { ["ApiKey"] = "new-key" },
            ["no-such-cluster"] = new JsonObject { ["ApiKey"] = "typo-key" },
        };
        await File.WriteAllTextAsync(gateway.ConfigFile, config.ToJsonString());

        await E2EHelpers.PollAsync(
            async () => (await gateway.ChatStatusAsync("pooled"), pool.Requests.Last().Headers.GetValueOrDefault("Authorization")),
            r => r.Item2 == "Bearer new-key",
            "the reloaded key to be sent");
        var warning = await E2EHelpers.PollAsync(
            () => Task.FromResult(logs.Entries.FirstOrDefault(e => e.EventName == "BackendUnknownCluster")),
            e => e.Message is not null,
            "the unknown-cluster warning");
        Assert.Contains("no-such-cluster", warning.Message);
        Assert.DoesNotContain(logs.Entries, e => e.Message.Contains("typo-key", StringComparison.Ordinal) || e.Message.Contains("new-key", StringComparison.Ordinal));
    }
}
