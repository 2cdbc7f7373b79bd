using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>SPEC §8 and §10 through HTTP: /v1/models, /v1/models/{id}, /healthz and /readyz.</summary>
public sealed class ModelsListTests
{
    [Fact]
    public async Task ModelsList_HasOpenAIShape_AndOnlyReadyEndpoints()
    {
        var before = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);
        var after = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        using var response = await gateway.Client.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var root = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal("list", root["object"]!.GetValue<string>());
        var data = root["data"]!.AsArray();
        var entries = data.Select(e => e!.AsObject()).ToDictionary(e => e["id"]!.GetValue<string>());
        Assert.Equal(["base", "base:adapter", "org/model"], entries.Keys.Order(StringComparer.Ordinal));

        foreach (var entry in entries.Values)
        {
            Assert.Equal("model", entry["object"]!.GetValue<string>());
            Assert.Equal(JsonValueKind.Number, entry["created"]!.GetValueKind());
            var created = entry["created"]!.GetValue<long>();
            Assert.InRange(created, before - 1, after + 1);
            Assert.Equal(JsonValueKind.String, entry["owned_by"]!.GetValueKind());
            Assert.False(string.IsNullOrEmpty(entry["owned_by"]!.GetValue<string>()));
            Assert.True(entry.ContainsKey("parent"), "every entry has a parent member (null for base models)");
            Assert.Equal(JsonValueKind.Number, entry["max_model_len"]!.GetValueKind());
        }

        // Every entry registered at start-up has the same `created`.
        Assert.Single(entries.Values.Select(e => e["created"]!.GetValue<long>()).Distinct());

        Assert.Equal("base", entries["base"]["root"]!.GetValue<string>());
        Assert.Null(entries["base"]["parent"]);
        Assert.Equal(8192, entries["base"]["max_model_len"]!.GetValue<int>());

        Assert.Equal("base", entries["base:adapter"]["root"]!.GetValue<string>());
        Assert.Equal("base", entries["base:adapter"]["parent"]!.GetValue<string>());
        Assert.Equal(4096, entries["base:adapter"]["max_model_len"]!.GetValue<int>());

        Assert.Equal("org/model", entries["org/model"]["root"]!.GetValue<string>());
        Assert.Null(entries["org/model"]["parent"]);
        Assert.Equal(1000, entries["org/model"]["max_model_len"]!.GetValue<int>());
    }

    [Fact]
    public async Task ModelsList_CreatedIsStableAcrossCalls()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        var first = await CreatedByIdAsync(gateway);

        // Let the clock pass a second boundary, so a `created` computed per call would differ.
        await E2EHelpers.PollAsync(
            () => Task.FromResult(DateTimeOffset.UtcNow.ToUnixTimeSeconds()), now => now > first.Values.Max(), "the next second");
        var second = await CreatedByIdAsync(gateway);

        Assert.Equal(first, second);
    }

    [Theory]
    [InlineData("org/model", "org/model")]
    [InlineData("base:adapter", "base:adapter")]
    [InlineData("org%2Fmodel", "org/model")]
    [InlineData("base%3Aadapter", "base:adapter")]
    [InlineData("base", "base")]
    [InlineData("my-alias", "base:adapter")]
    [InlineData("team/alias:v1", "org/model")]
    public async Task ModelById_ReturnsTheEntry(string requested, string expectedId)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        using var response = await gateway.Client.GetAsync("/v1/models/" + requested);

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var entry = JsonNode.Parse(text)!.AsObject();
        Assert.Equal(expectedId, entry["id"]!.GetValue<string>());
        Assert.Equal("model", entry["object"]!.GetValue<string>());
        Assert.True(entry.ContainsKey("created") && entry.ContainsKey("owned_by") && entry.ContainsKey("root") && entry.ContainsKey("parent") && entry.ContainsKey("max_model_len"), text);

        // The same entry as in the list.
        using var list = await gateway.Client.GetAsync("/v1/models");
        var listed = JsonNode.Parse(await list.Content.ReadAsStringAsync())!["data"]!.AsArray().Single(e => e!["id"]!.GetValue<string>() == expectedId);
        Assert.True(JsonNode.DeepEquals(listed, entry), $"{listed?.ToJsonString()} vs {entry.ToJsonString()}");
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("org/nope")]
    [InlineData("base:nope")]
    [InlineData("BASE")]
    public async Task ModelById_Unknown_Returns404ModelNotFound(string requested)
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        using var response = await gateway.Client.GetAsync("/v1/models/" + requested);

        var error = await E2EHelpers.AssertErrorAsync(response, HttpStatusCode.NotFound, "invalid_request_error", "model_not_found");
        Assert.Contains(requested, error.Message, StringComparison.Ordinal);
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task ModelsList_IsAnsweredByTheGateway_NotTheBackend()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        using var list = await gateway.Client.GetAsync("/v1/models");
        using var one = await gateway.Client.GetAsync("/v1/models/base");

        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Empty(backend.Requests);
    }

    [Fact]
    public async Task Healthz_Returns200()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        using var response = await gateway.Client.GetAsync("/healthz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Readyz_WithAReadyEndpoint_Returns200()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await StartAsync(backend);

        using var response = await gateway.Client.GetAsync("/readyz");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Readyz_WithNoReadyEndpoint_Returns503_HealthzStill200()
    {
        await using var backend = await TestBackend.StartAsync("a");
        await using var gateway = await TestGateway.StartAsync(TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [
                TestGateway.Endpoint("loading", "ca", status: "Loading", isDefault: true),
                TestGateway.Endpoint("broken", "ca", status: "Error"),
                TestGateway.Endpoint("off", "ca", status: "Disabled"),
            ]));

        using var ready = await gateway.Client.GetAsync("/readyz");
        using var health = await gateway.Client.GetAsync("/healthz");
        using var models = await gateway.Client.GetAsync("/v1/models");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        Assert.Empty(JsonNode.Parse(await models.Content.ReadAsStringAsync())!["data"]!.AsArray());
    }

    private static Task<TestGateway> StartAsync(TestBackend backend) => TestGateway.StartAsync(TestGateway.Config(
        new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
        [
            E2EHelpers.Endpoint("base", "ca", "base", maxContext: 8192, isDefault: true),
            E2EHelpers.Endpoint("base:adapter", "ca", "base", adapter: "adapter", aliases: "my-alias"),
            E2EHelpers.Endpoint("org/model", "ca", "org/model", maxContext: 1000, aliases: "team/alias:v1"),
            E2EHelpers.Endpoint("warming", "ca", "warming", status: "Loading"),
            E2EHelpers.Endpoint("broken", "ca", "broken", status: "Error"),
            E2EHelpers.Endpoint("base:off", "ca", "base", adapter: "off", status: "Disabled"),
        ]));

    private static async Task<Dictionary<string, long>> CreatedByIdAsync(TestGateway gateway)
    {
        using var response = await gateway.Client.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["data"]!.AsArray()
            .ToDictionary(e => e!["id"]!.GetValue<string>(), e => e!["created"]!.GetValue<long>());
    }
}
