using ModelRouting.Registry;

namespace ModelRouting.Tests.Registry;

public class EndpointStatusTests
{
    [Theory]
    [InlineData(EndpointStatus.Ready, true)]
    [InlineData(EndpointStatus.Loading, false)]
    [InlineData(EndpointStatus.Error, false)]
    [InlineData(EndpointStatus.Disabled, false)]
    public void IsAvailable_IsTrueOnlyForReady(EndpointStatus status, bool expected) =>
        Assert.Equal(expected, status.IsAvailable());

    [Theory]
    [InlineData(EndpointStatus.Ready, "ready")]
    [InlineData(EndpointStatus.Loading, "loading")]
    [InlineData(EndpointStatus.Error, "error")]
    [InlineData(EndpointStatus.Disabled, "disabled")]
    public void ToWireName_IsLowerCaseName(EndpointStatus status, string expected) =>
        Assert.Equal(expected, status.ToWireName());

    [Fact]
    public void ToWireName_UndefinedValue_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ((EndpointStatus)42).ToWireName());

    [Theory]
    [InlineData("Ready", EndpointStatus.Ready)]
    [InlineData("ready", EndpointStatus.Ready)]
    [InlineData("READY", EndpointStatus.Ready)]
    [InlineData("Loading", EndpointStatus.Loading)]
    [InlineData("loading", EndpointStatus.Loading)]
    [InlineData("LoAdInG", EndpointStatus.Loading)]
    [InlineData("error", EndpointStatus.Error)]
    [InlineData("Disabled", EndpointStatus.Disabled)]
    [InlineData("  disabled ", EndpointStatus.Disabled)]
    public void TryParse_KnownName_IsCaseInsensitive(string text, EndpointStatus expected)
    {
        Assert.True(EndpointStatusExtensions.TryParse(text, out var status));
        Assert.Equal(expected, status);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("0")]
    [InlineData("1")]
    [InlineData("3")]
    [InlineData("42")]
    [InlineData("-1")]
    [InlineData("+1")]
    [InlineData(" 2")]
    [InlineData("unknown")]
    [InlineData("Readyy")]
    [InlineData("active")]
    [InlineData("Loading, Error")]
    [InlineData("Ready,Ready")]
    [InlineData("Loading|Error")]
    public void TryParse_NumberOrUnknownName_IsRefused(string? text) =>
        Assert.False(EndpointStatusExtensions.TryParse(text, out _));

    [Fact]
    public void WireNames_RoundTripThroughTryParse()
    {
        foreach (var status in Enum.GetValues<EndpointStatus>())
        {
            Assert.True(EndpointStatusExtensions.TryParse(status.ToWireName(), out var parsed));
            Assert.Equal(status, parsed);
        }
    }
}
