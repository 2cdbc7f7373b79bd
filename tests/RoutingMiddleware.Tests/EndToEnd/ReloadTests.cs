using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.EndToEnd;

/// <summary>SPEC §3: a <c>--config</c> file layered over appsettings.json, edited while the gateway runs.</summary>
public sealed class ReloadTests
{
    [Fact]
    public async Task ConfigFile_StatusDisabledThenReady_TakesEffectWithoutRestart()
    {
        await using var backend = await TestBackend.StartAsync("a");
        using var dir = E2EHelpers.TempDir();
        var configFile = dir.File("models.json");
        await WriteConfigAsync(configFile, Endpoints(m2Status: "Ready"));
        await using var gateway = await StartAsync(backend, configFile);

        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m2"));

        await WriteConfigAsync(configFile, Endpoints(m2Status: "Disabled"));
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("m2"), s => s == HttpStatusCode.ServiceUnavailable, "m2 to be disabled");
        using (var refused = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m2")))
        {
            var error = await E2EHelpers.AssertErrorAsync(refused, HttpStatusCode.ServiceUnavailable, "server_error", "model_not_ready");
            Assert.Contains("m2", error.Message, StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m1"));

        await WriteConfigAsync(configFile, Endpoints(m2Status: "Ready"));
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("m2"), s => s == HttpStatusCode.OK, "m2 to be ready again");
        Assert.Equal("up-2", backend.Requests.Last().Model);
    }

    [Fact]
    public async Task ConfigFile_NewAlias_TakesEffect()
    {
        await using var backend = await TestBackend.StartAsync("a");
        using var dir = E2EHelpers.TempDir();
        var configFile = dir.File("models.json");
        await WriteConfigAsync(configFile, Endpoints(m2Status: "Ready"));
        await using var gateway = await StartAsync(backend, configFile);

        Assert.Equal(HttpStatusCode.NotFound, await gateway.ChatStatusAsync("late-alias"));

        var endpoints = Endpoints(m2Status: "Ready");
        endpoints[1]!["Aliases"] = new JsonArray("late-alias");
        await WriteConfigAsync(configFile, endpoints);

        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("late-alias"), s => s == HttpStatusCode.OK, "the new alias");
        Assert.Equal("up-2", backend.Requests.Last().Model);
    }

    [Theory]
    [InlineData("duplicate-id")]
    [InlineData("unknown-cluster")]
    [InlineData("two-defaults")]
    [InlineData("unknown-status")]
    [InlineData("negative-context")]
    public async Task ConfigFile_InvalidReload_KeepsTheLastGoodRegistry(string invalid)
    {
        await using var backend = await TestBackend.StartAsync("a");
        using var dir = E2EHelpers.TempDir();
        var configFile = dir.File("models.json");
        await WriteConfigAsync(configFile, Endpoints(m2Status: "Ready"));
        await using var gateway = await StartAsync(backend, configFile);
        var logs = gateway.CaptureLogs();
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m2"));

        // The invalid file also disables m2: none of it may apply.
        var endpoints = Endpoints(m2Status: "Disabled");
        switch (invalid)
        {
            case "duplicate-id":
                endpoints.Add(Endpoint("m1", "ca"));
                break;
            case "unknown-cluster":
                endpoints.Add(Endpoint("m3", "no-such-cluster"));
                break;
            case "two-defaults":
                endpoints.Add(Endpoint("m3", "ca", isDefault: true));
                break;
            case "unknown-status":
                endpoints.Add(Endpoint("m3", "ca", status: "Sleeping"));
                break;
            case "negative-context":
                var bad = Endpoint("m3", "ca");
                bad["MaxContextLength"] = -1;
                endpoints.Add(bad);
                break;
        }

        await WriteConfigAsync(configFile, endpoints);
        await E2EHelpers.PollAsync(
            () => Task.FromResult(logs.Entries.Any(e => e.Level >= LogLevel.Error)),
            rejected => rejected,
            "the invalid reload to be rejected and logged");
        var logged = logs.Entries.First(e => e.Level >= LogLevel.Error).Message;
        Assert.Contains(invalid == "duplicate-id" ? "m1" : "m3", logged, StringComparison.Ordinal);

        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m2"));
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m1"));
        Assert.Equal(HttpStatusCode.NotFound, await gateway.ChatStatusAsync("m3"));
        using (var ready = await gateway.Client.GetAsync("/readyz"))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        // A later valid edit still applies.
        await WriteConfigAsync(configFile, Endpoints(m2Status: "Disabled"));
        await E2EHelpers.PollAsync(() => gateway.ChatStatusAsync("m2"), s => s == HttpStatusCode.ServiceUnavailable, "the valid edit after the invalid one");
    }

    [Fact]
    public async Task ConfigFile_Reload_KeepsCreatedStable()
    {
        await using var backend = await TestBackend.StartAsync("a");
        using var dir = E2EHelpers.TempDir();
        var configFile = dir.File("models.json");
        await WriteConfigAsync(configFile, Endpoints(m2Status: "Ready"));
        await using var gateway = await StartAsync(backend, configFile);

        var before = await CreatedByIdAsync(gateway);
        Assert.Equal(["m1", "m2"], before.Keys.Order(StringComparer.Ordinal));

        // Let the clock pass a second boundary, so re-registering would change `created`.
        await E2EHelpers.PollAsync(
            () => Task.FromResult(DateTimeOffset.UtcNow.ToUnixTimeSeconds()), now => now > before.Values.Max(), "the next second");

        await WriteConfigAsync(configFile, Endpoints(m2Status: "Disabled"));
        var during = await E2EHelpers.PollAsync(() => CreatedByIdAsync(gateway), d => !d.ContainsKey("m2"), "m2 to leave the list");
        Assert.Equal(before["m1"], during["m1"]);

        await WriteConfigAsync(configFile, Endpoints(m2Status: "Ready"));
        var after = await E2EHelpers.PollAsync(() => CreatedByIdAsync(gateway), d => d.ContainsKey("m2"), "m2 to come back");
        Assert.Equal(before, after);
    }

    [Fact]
    public async Task ConfigFile_InvalidTokenEstimation_KeepsTheLastGoodEstimator()
    {
        await using var backend = await TestBackend.StartAsync("a");
        using var dir = E2EHelpers.TempDir();
        var configFile = dir.File("models.json");
        await WriteConfigAsync(configFile, Endpoints(m2Status: "Ready"));
        await using var gateway = await StartAsync(backend, configFile);
        Assert.Equal(HttpStatusCode.OK, await gateway.ChatStatusAsync("m1"));

        // An encoding that does not exist: the reload is refused, and the estimator must not pick it up either.
        var json = new JsonObject
        {
            ["ModelRouting"] = new JsonObject
            {
                ["Endpoints"] = Endpoints(m2Status: "Ready"),
                ["TokenEstimation"] = new JsonObject { ["Mode"] = "Tiktoken", ["Encoding"] = "no_such_encoding" },
            },
        }.ToJsonString();
        await File.WriteAllTextAsync(configFile + ".tmp", json);
        File.Move(configFile + ".tmp", configFile, overwrite: true);
        var monitor = gateway.Services.GetRequiredService<Microsoft.Extensions.Options.IOptionsMonitor<ModelRouting.Configuration.ModelRoutingOptions>>();
        await E2EHelpers.PollAsync(() => Task.FromResult(monitor.CurrentValue.TokenEstimation.Encoding), e => e == "no_such_encoding", "the reload to be seen");

        using var response = await gateway.PostRawAsync("/v1/chat/completions", E2EHelpers.Chat("m1"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(response.Headers.Contains("x-gateway-estimated-tokens"));
    }

    private static Task<TestGateway> StartAsync(TestBackend backend, string configFile) => TestGateway.StartAsync(
        TestGateway.Config(
            new Dictionary<string, string[]> { ["ca"] = [backend.Url] },
            [TestGateway.Endpoint("m1", "ca", isDefault: true), TestGateway.Endpoint("m2", "ca", upstream: "up-2")]),
        "--config",
        configFile);

    private static JsonArray Endpoints(string m2Status) =>
    [
        Endpoint("m1", "ca", isDefault: true, status: "Ready"),
        Endpoint("m2", "ca", status: m2Status, upstream: "up-2"),
    ];

    private static JsonObject Endpoint(string id, string cluster, bool isDefault = false, string? status = null, string? upstream = null)
    {
        var node = TestGateway.Endpoint(id, cluster, isDefault: isDefault, status: status ?? "Ready", upstream: upstream);
        node["IsDefault"] = isDefault;
        return node;
    }

    private static async Task WriteConfigAsync(string path, JsonArray endpoints)
    {
        var json = new JsonObject { ["ModelRouting"] = new JsonObject { ["Endpoints"] = endpoints } }.ToJsonString();

        // Write beside and move into place, so the watcher never sees a half-written file.
        var temp = path + ".tmp";
        await File.WriteAllTextAsync(temp, json);
        File.Move(temp, path, overwrite: true);
    }

    private static async Task<Dictionary<string, long>> CreatedByIdAsync(TestGateway gateway)
    {
        using var response = await gateway.Client.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["data"]!.AsArray()
            .ToDictionary(e => e!["id"]!.GetValue<string>(), e => e!["created"]!.GetValue<long>());
    }
}
