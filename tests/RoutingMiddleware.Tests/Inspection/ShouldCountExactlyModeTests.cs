using ModelRouting.Configuration;
using ModelRouting.Inspection;
using ModelRouting.Registry;
using ModelRouting.Routing;

namespace ModelRouting.Tests.Inspection;

/// <summary>When a decision is recounted, by global and per-endpoint <c>TokenEstimation:Mode</c> (SPEC §6, §18).</summary>
public sealed class ShouldCountExactlyModeTests
{
    private const int Limit = 1000;

    private static bool Recounts(string global, string? endpointMode, long required)
    {
        TokenEstimationMode? mode = endpointMode is null ? null : TokenEstimationModes.TryParse(endpointMode, out var parsed) ? parsed : throw new ArgumentException(endpointMode);
        var endpoint = new ModelEndpoint("m", "m", "c") { MaxContextLength = Limit, TokenEstimationMode = mode };
        var settings = new TokenEstimationOptions { Mode = global };
        return PromptTokenEstimator.ShouldCountExactly(settings, new RouteResult(endpoint, null), endpoint, required);
    }

    [Theory]
    [InlineData("Heuristic", null)]
    [InlineData("Backend", null)]
    [InlineData("Tiktoken", "Backend")]
    [InlineData("Heuristic", "Backend")]
    [InlineData("Backend", "Heuristic")]
    public void NearTheLimitOnly(string global, string? endpointMode)
    {
        Assert.True(Recounts(global, endpointMode, Limit * 9 / 10));
        Assert.False(Recounts(global, endpointMode, Limit / 10));
    }

    [Theory]
    [InlineData("Heuristic")]
    [InlineData("Backend")]
    public void EndpointTiktoken_AfterAHeuristicPass_AlwaysRecounts(string global)
    {
        Assert.True(Recounts(global, "Tiktoken", Limit / 10));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("Tiktoken")]
    [InlineData("Heuristic")]
    public void TiktokenPass_SameEncoding_NeverRecounts(string? endpointMode)
    {
        Assert.False(Recounts("Tiktoken", endpointMode, Limit * 9 / 10));
        Assert.False(Recounts("Tiktoken", endpointMode, Limit / 10));
    }
}
