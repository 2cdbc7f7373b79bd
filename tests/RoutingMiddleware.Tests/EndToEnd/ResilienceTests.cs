using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using ModelRouting.Tests.EndToEnd.Support;
using static ModelRouting.Tests.EndToEnd.Support.StreamingHelpers;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>SPEC §7: forwarding goes through YARP — its load balancing and health checks apply; backend answers pass through.</summary>
public sealed class ResilienceTests
{
    private const string Chat = """{"model":"pooled","messages":[{"role":"user","content":"hi"}]}""";

    [Theory]
    [InlineData("front")] // the model's cluster is the route's cluster
    [InlineData("pool")] // the request is reassigned to another cluster
    public async Task LoadIsSpreadOverTheClustersDestinations(string modelCluster)
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var other = await TestBackend.StartAsync("other");
        var clusters = modelCluster == "front"
            ? new Dictionary<string, string[]> { ["front"] = [a.Url, b.Url], ["pool"] = [other.Url] }
            : new Dictionary<string, string[]> { ["front"] = [other.Url], ["pool"] = [a.Url, b.Url] };
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            clusters,
            [TestGateway.Endpoint("pooled", modelCluster, upstream: "up-pooled")],
            cluster: c => c["LoadBalancingPolicy"] = "RoundRobin"));

        for (var i = 0; i < 20; i++)
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.NotEmpty(a.Requests);
        Assert.NotEmpty(b.Requests);
        Assert.Equal(20, a.Requests.Count + b.Requests.Count);
        Assert.Empty(other.Requests);
        Assert.All(a.Requests.Concat(b.Requests), r => Assert.Equal("up-pooled", r.Model));
    }

    [Fact]
    public async Task DeadDestination_IsRetriedOnTheLiveOne_ThenCooledDown_InTheReassignedCluster()
    {
        await using var front = await TestBackend.StartAsync("front");
        await using var live = await TestBackend.StartAsync("live");
        var dead = DeadLoopbackUrl();

        // The model's cluster ("pool") is not the route's cluster ("front"): the request is reassigned, and the
        // failed attempt must be retried within "pool" (SPEC §13), and the dead destination of "pool" cooled down.
        // RoundRobin would give the dead destination every other request if it were not.
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["front"] = [front.Url], ["pool"] = [live.Url, dead] },
            [TestGateway.Endpoint("front-model", "front", isDefault: true), TestGateway.Endpoint("pooled", "pool", upstream: "up-pooled")],
            cluster: c =>
            {
                c["LoadBalancingPolicy"] = "RoundRobin";
                c["HealthCheck"] = new JsonObject { ["Passive"] = new JsonObject { ["Enabled"] = true } };
            }));

        const int total = 40;
        var attempts = new List<int>();
        for (var i = 0; i < total; i++)
        {
            using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            attempts.Add(int.Parse(response.Headers.GetValues("x-gateway-attempts").Single(), System.Globalization.CultureInfo.InvariantCulture));
        }

        // The dead destination is tried once, then skipped for the cooldown (5 s, longer than this test).
        Assert.Equal(1, attempts.Count(a => a == 2));
        Assert.All(attempts, a => Assert.InRange(a, 1, 2));
        Assert.Equal(total, live.Requests.Count);
        Assert.Empty(front.Requests);
    }

    [Fact]
    public async Task AllDestinationsDown_IsAnOpenAIUpstreamError()
    {
        await using var front = await TestBackend.StartAsync("front");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["front"] = [front.Url], ["pool"] = [DeadLoopbackUrl()] },
            [TestGateway.Endpoint("front-model", "front", isDefault: true), TestGateway.Endpoint("pooled", "pool")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat);

        Assert.True(response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable, response.StatusCode.ToString());
        var (code, type, message) = await TestGateway.ReadErrorAsync(response);
        Assert.Equal("upstream_unavailable", code);
        Assert.Equal("server_error", type);
        Assert.Contains("pooled", message);
        Assert.Empty(front.Requests);
    }

    [Theory]
    [InlineData("application/json", """{"error":{"message":"CUDA out of memory","type":"backend_error","param":null,"code":"oom"},"extra":[1,2,3]}""")]
    [InlineData("text/plain; charset=utf-8", "upstream exploded\n\tnot JSON at all")]
    public async Task Backend500_PassesThroughUnchanged(string contentType, string body)
    {
        await using var front = await TestBackend.StartAsync("front");
        await using var failing = await TestBackend.StartAsync("failing", async (context, _) =>
        {
            context.Response.StatusCode = StatusCodes.Status500InternalServerError;
            context.Response.ContentType = contentType;
            context.Response.Headers["x-backend-error"] = "yes";
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(body), context.RequestAborted);
        });
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["front"] = [front.Url], ["pool"] = [failing.Url] },
            [TestGateway.Endpoint("front-model", "front", isDefault: true), TestGateway.Endpoint("pooled", "pool")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", Chat);

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        Assert.Equal(contentType, response.Content.Headers.ContentType?.ToString());
        Assert.Equal("yes", response.Headers.GetValues("x-backend-error").Single());
        Assert.Equal(Encoding.UTF8.GetBytes(body), await response.Content.ReadAsByteArrayAsync());
        Assert.Equal("pooled", response.Headers.GetValues("x-gateway-endpoint").Single());
        Assert.Single(failing.Requests);
    }
}
