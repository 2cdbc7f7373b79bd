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
