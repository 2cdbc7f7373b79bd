using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using ModelRouting.Configuration;
using ModelRouting.Keys;
using ModelRouting.Tests.EndToEnd.Support;

namespace ModelRouting.Tests.Keys;

/// <summary>SPEC §14: a malformed key configuration is a configuration error naming the entry and the field.</summary>
public sealed class KeyConfigurationTests
{
    private static IReadOnlyList<string> Errors(string keysJson, string endpointLimits = "null")
    {
        var json = $$"""
            {"Endpoints":[{"Id":"qwen","Cluster":"pool","IsDefault":true,"Limits":{{endpointLimits}}},{"Id":"qwen:sql","Cluster":"pool","Adapter":"sql"}],"Keys":{{keysJson}}}
            """;
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build();
        var options = configuration.Get<ModelRoutingOptions>()!;
        return ModelRegistryFactory.Build(options, new HashSet<string> { "pool" }, null, TimeProvider.System).Errors;
    }

    private static readonly string s_hash = ClientKeyValidator.HashHex("secret");

    [Fact]
    public void ValidKeys_NoErrors()
    {
        Assert.Empty(Errors("""[{"Id":"a","KeyHash":"HASH","Models":["qwen:*"],"Limits":{"RequestsPerMinute":60}},{"Id":"b","Key":"other","Models":["*"]}]""".Replace("HASH", s_hash, StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("""[{"Id":"a","KeyHash":"xyz","Models":["*"]}]""", "ModelRouting:Keys[0] ('a'): KeyHash: must be 64 hex digits")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Models":["nope:*"]}]""", "ModelRouting:Keys[0] ('a'): Models[0]: 'nope:*' matches no endpoint")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Models":["qw*"]}]""", "ModelRouting:Keys[0] ('a'): Models[0]: 'qw*' is not a pattern")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Models":["gpt"]}]""", "ModelRouting:Keys[0] ('a'): Models[0]: 'gpt' is neither an endpoint id nor an alias")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH"}]""", "ModelRouting:Keys[0] ('a'): Models: is required")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Models":["*"],"Limits":{"RequestsPerMinute":-1}}]""", "ModelRouting:Keys[0] ('a'): Limits:RequestsPerMinute: must be positive, got -1")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Models":["*"],"Limits":{"MaxConcurrent":0}}]""", "ModelRouting:Keys[0] ('a'): Limits:MaxConcurrent: must be positive")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Models":["*"]},{"Id":"a","Key":"x","Models":["*"]}]""", "ModelRouting:Keys[1] ('a'): Id: 'a' is a duplicate of ModelRouting:Keys[0]")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Models":["*"]},{"Id":"b","Key":"secret","Models":["*"]}]""", "ModelRouting:Keys[1] ('b'): KeyHash: the same secret as ModelRouting:Keys[0]")]
    [InlineData("""[{"KeyHash":"HASH","Models":["*"]}]""", "ModelRouting:Keys[0]: Id: is required")]
    [InlineData("""[{"Id":"a","Models":["*"]}]""", "ModelRouting:Keys[0] ('a'): KeyHash: is required")]
    [InlineData("""[{"Id":"a","KeyHash":"HASH","Key":"x","Models":["*"]}]""", "ModelRouting:Keys[0] ('a'): KeyHash: set KeyHash or Key, not both")]
    public void MalformedKey_IsAnErrorNamingEntryAndField(string keys, string expected)
    {
        var errors = Errors(keys.Replace("HASH", s_hash, StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void NegativeEndpointLimit_IsAnErrorNamingTheEndpoint()
    {
        var errors = Errors("[]", """{"TokensPerMinute":-10}""");
        Assert.Contains("ModelRouting:Endpoints[0] ('qwen'): Limits:TokensPerMinute: must be positive, got -10", errors);
    }

    [Fact]
    public async Task Check_ReportsKeyErrors_AndTheHostRefusesToStart()
    {
        await using var pool = await TestBackend.StartAsync("pool");
        var config = TestGateway.Config(new Dictionary<string, string[]> { ["pool"] = [pool.Url] }, [TestGateway.Endpoint("m", "pool", isDefault: true)], new JsonObject
        {
            ["Keys"] = new JsonArray(new JsonObject { ["Id"] = "a", ["KeyHash"] = "not-hex", ["Models"] = new JsonArray("*") }),
        });
        using var dir = E2EHelpers.TempDir();
        var file = dir.Write("gateway.json", config.ToJsonString());
        var check = await HostProcess.RunToExitAsync(["--check", "--config", file, "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + dir.File("state.json")], dir.Path);
        Assert.Equal(1, check.ExitCode);
        Assert.Contains("ModelRouting:Keys[0] ('a'): KeyHash: must be 64 hex digits", check.Output, StringComparison.Ordinal);

        var start = await HostProcess.RunToExitAsync(["--urls", "http://127.0.0.1:0", "--config", file, "--ModelRouting:Admin:Urls=", "--ModelRouting:Admin:StateFile=" + dir.File("state.json")], dir.Path);
        Assert.NotEqual(0, start.ExitCode);
        Assert.Contains("KeyHash", start.Output, StringComparison.Ordinal);
    }
}
