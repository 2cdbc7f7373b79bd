using ModelRouting.Configuration;
using ModelRouting.Tests.TestSupport;
using static ModelRouting.Tests.Configuration.ConfigTestData;

namespace ModelRouting.Tests.Configuration;

/// <summary><c>TokenEstimation:Mode</c> (SPEC §18): the three modes, globally and per endpoint; bad values name entry and field.</summary>
public sealed class TokenEstimationModeConfigTests
{
    private static IReadOnlyList<string> Errors(ModelRoutingOptions options) =>
        ModelRegistryFactory.Build(options, Clusters, previous: null, new ManualTimeProvider()).Errors;

    [Theory]
    [InlineData("Heuristic")]
    [InlineData("tiktoken")]
    [InlineData("BACKEND")]
    public void Build_GlobalMode_AcceptsTheThreeNamesIgnoringCase(string mode)
    {
        var options = Options(Entry("m"));
        options.TokenEstimation.Mode = mode;

        Assert.Empty(Errors(options));
    }

    [Fact]
    public void Build_UnknownGlobalMode_NamesFieldAndChoices()
    {
        var options = Options(Entry("m"));
        options.TokenEstimation.Mode = "Bakend";

        Assert.Equal("ModelRouting:TokenEstimation:Mode: 'Bakend' is not one of Heuristic, Tiktoken, Backend", Assert.Single(Errors(options)));
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("-00:00:01")]
    public void Build_NonPositiveBackendTimeout_NamesField(string timeout)
    {
        var options = Options(Entry("m"));
        options.TokenEstimation.BackendTimeout = TimeSpan.Parse(timeout, System.Globalization.CultureInfo.InvariantCulture);

        Assert.StartsWith("ModelRouting:TokenEstimation:BackendTimeout: must be positive", Assert.Single(Errors(options)), StringComparison.Ordinal);
    }

    [Fact]
    public void Build_UnknownEndpointMode_NamesEntryAndField_AndReportsEveryError()
    {
        var bad = Entry("x");
        bad.TokenEstimation = new EndpointTokenEstimationOptions { Mode = "Exact" };
        var alsoBad = Entry("y");
        alsoBad.TokenEstimation = new EndpointTokenEstimationOptions { Mode = "" };
        var options = Options(Entry("m"), bad, alsoBad);
        options.TokenEstimation.Mode = "Remote";

        var errors = Errors(options);

        Assert.Equal(
            [
                "ModelRouting:TokenEstimation:Mode: 'Remote' is not one of Heuristic, Tiktoken, Backend",
                "ModelRouting:Endpoints[1] ('x'): TokenEstimation:Mode 'Exact' is not one of Heuristic, Tiktoken, Backend",
                "ModelRouting:Endpoints[2] ('y'): TokenEstimation:Mode '' is not one of Heuristic, Tiktoken, Backend",
            ],
            errors);
    }

    [Fact]
    public void Build_EndpointMode_IsOnTheEndpoint_AbsentFollowsGlobal()
    {
        var backend = Entry("b");
        backend.TokenEstimation = new EndpointTokenEstimationOptions { Mode = "backend" };
        var plain = Entry("p");
        plain.TokenEstimation = new EndpointTokenEstimationOptions();

        var registry = MustBuild(Options(backend, plain, Entry("q")), new ManualTimeProvider());

        Assert.True(registry.TryGet("b", out var b));
        Assert.Equal(TokenEstimationMode.Backend, b.TokenEstimationMode);
        Assert.True(registry.TryGet("p", out var p));
        Assert.Null(p.TokenEstimationMode);
        Assert.True(registry.TryGet("q", out var q));
        Assert.Null(q.TokenEstimationMode);
    }
}

/// <summary>The per-endpoint section binds from configuration as the global one does.</summary>
public sealed class TokenEstimationModeBindingTests
{
    private static ModelRoutingOptions Bind(string json)
    {
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json)))
            .Build();
        var options = new ModelRoutingOptions();
        Microsoft.Extensions.Configuration.ConfigurationBinder.Bind(configuration.GetSection("ModelRouting"), options);
        return options;
    }

    [Fact]
    public void Bind_EndpointSection_AndGlobalTimeout()
    {
        var options = Bind("""
            { "ModelRouting": {
                "TokenEstimation": { "Mode": "Backend", "BackendTimeout": "00:00:02.5" },
                "Endpoints": [ { "Id": "m", "Cluster": "qwen-pool", "TokenEstimation": { "Mode": "Heuristic" } } ] } }
            """);

        Assert.Equal("Backend", options.TokenEstimation.Mode);
        Assert.Equal(TimeSpan.FromSeconds(2.5), options.TokenEstimation.BackendTimeout);
        Assert.Equal("Heuristic", options.Endpoints[0].TokenEstimation?.Mode);
    }

    [Theory]
    [InlineData("Backend")]
    [InlineData("Bakend")]
    public void Bind_EndpointSectionAsAString_IsItsMode_ValidatedLikeIt(string mode)
    {
        var options = Bind($$"""{ "ModelRouting": { "Endpoints": [ { "Id": "m", "Cluster": "qwen-pool", "TokenEstimation": "{{mode}}" } ] } }""");

        Assert.Equal(mode, options.Endpoints[0].TokenEstimation?.Mode);
        var errors = ModelRegistryFactory.Build(options, ConfigTestData.Clusters, previous: null, new ManualTimeProvider()).Errors;
        if (mode == "Backend")
        {
            Assert.Empty(errors);
        }
        else
        {
            Assert.Equal("ModelRouting:Endpoints[0] ('m'): TokenEstimation:Mode 'Bakend' is not one of Heuristic, Tiktoken, Backend", Assert.Single(errors));
        }
    }
}
