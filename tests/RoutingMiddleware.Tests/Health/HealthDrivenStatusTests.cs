using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using ModelRouting.Configuration;
using ModelRouting.Registry;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.Admin.AdminTestSupport;

namespace ModelRouting.Tests.Health;

/// <summary>
/// Issue 6: YARP active health checks drive endpoint status. A real backend on a fixed port is stopped (the
/// endpoint reads as Error: 503 model_not_ready with Retry-After) and restarted on the same port (Ready
/// again); an administrator's Disabled always wins.
/// </summary>
public sealed class HealthDrivenStatusTests
{
    [Fact]
    public async Task BackendDown_EndpointReadsError_503WithRetryAfter_ReadyOnRecovery_DisabledWins()
    {
        using var dir = new TempDirectory();
        var url = $"http://127.0.0.1:{E2EHelpers.ClosedLoopbackPort()}";
        var backend = await TestBackend.StartAsync("b", url: url);
        await using var other = await TestBackend.StartAsync("other");
        var config = TestGateway.Config(
            new Dictionary<string, string[]> { ["pool"] = [url], ["healthy"] = [other.Url] },
            [TestGateway.Endpoint("m", "pool", isDefault: true), TestGateway.Endpoint("n", "healthy")],
            AdminSection(dir.File("state.json")));
        config["ModelRouting"]!["Health"] = new JsonObject { ["PollInterval"] = "00:00:00.050" };
        config["ReverseProxy"]!["Clusters"]!["pool"]!["HealthCheck"] = new JsonObject
        {
            ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = "00:00:00.200", ["Timeout"] = "00:00:00.500", ["Policy"] = "ConsecutiveFailures", ["Path"] = "/health" },
        };
        config["ReverseProxy"]!["Clusters"]!["pool"]!["Metadata"] = new JsonObject { ["ConsecutiveFailuresHealthPolicy.Threshold"] = "1" };
        await using var gateway = await TestGateway.StartAsync(config);
        try
        {
            Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m"));

            await backend.DisposeAsync();
            // The first failures are answered by failover (the destination cools down: upstream_unavailable); the
            // health check then turns the endpoint to Error.
            await E2EHelpers.PollAsync(
                () => gateway.Services.GetRequiredService<ModelRegistrySource>().Current.Router.Registry.TryGet("m", out var e) ? Task.FromResult(e.Status) : Task.FromResult(EndpointStatus.Ready),
                s => s == EndpointStatus.Error,
                "the endpoint to read as not ready");
            using (var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m")))
            {
                Assert.NotNull(response.Headers.RetryAfter);
                var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "model_not_ready");
                Assert.Contains("error", error.Message);
            }

            var listed = (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("m"))).Body!;
            Assert.Equal("error", listed["status"]!.GetValue<string>());
            Assert.Equal("ready", listed["administered_status"]!.GetValue<string>());
            Assert.Contains("pool", listed["status_reason"]!.GetValue<string>());
            Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("n"));
            Assert.DoesNotContain("\"m\"", await gateway.Client.GetStringAsync("/v1/models"));

            // An administrator disables it while it is down; recovery must not override that.
            Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Put, "/admin/status/m", new JsonObject { ["status"] = "Disabled" })).Status);
            backend = await TestBackend.StartAsync("b", url: url);
            var source = gateway.Services.GetRequiredService<ModelRegistrySource>();
            await E2EHelpers.PollAsync(() => Task.FromResult(source.Conditions.UnhealthyClusters.Count), n => n == 0, "the cluster to be healthy again");
            using (var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m")))
            {
                var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.ServiceUnavailable, "server_error", "model_not_ready");
                Assert.Contains("disabled", error.Message);
                Assert.Null(response.Headers.RetryAfter);
            }

            Assert.Equal(HttpStatusCode.OK, (await gateway.AdminAsync(HttpMethod.Put, "/admin/status/m", new JsonObject { ["status"] = "Ready" })).Status);
            Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m"));
            Assert.Equal("ready", (await gateway.AdminAsync(HttpMethod.Get, EndpointPath("m"))).Body!["status"]!.GetValue<string>());
        }
        finally
        {
            await backend.DisposeAsync();
        }
    }
}
