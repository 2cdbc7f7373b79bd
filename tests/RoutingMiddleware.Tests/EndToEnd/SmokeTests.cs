using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

public sealed class SmokeTests
{
    [Fact]
    public async Task Chat_ByAlias_ReachesClusterWithUpstreamModel()
    {
        await using var a = await TestBackend.StartAsync("a");
        await using var b = await TestBackend.StartAsync("b");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [a.Url], ["cb"] = [b.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true), TestGateway.Endpoint("m2", "cb", upstream: "up-2", aliases: "friendly")]));

        using var response = await gateway.PostRawAsync("/v1/chat/completions", """{"model":"friendly","messages":[{"role":"user","content":"hi"}]}""");

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("m2", response.Headers.GetValues("x-gateway-endpoint").Single());
        var seen = Assert.Single(b.Requests);
        Assert.Equal("""{"model":"up-2","messages":[{"role":"user","content":"hi"}]}""", seen.BodyText);
        Assert.Empty(a.Requests);
    }
}
