using Microsoft.Extensions.Configuration;
using ModelRouting.Admin;
using ModelRouting.Configuration;

namespace ModelRouting.Tests.Admin;

/// <summary>SPEC §12: the management listener's URLs, its default, and how it is turned off.</summary>
public sealed class ManagementListenerTests
{
    [Fact]
    public void Urls_NotConfigured_DefaultToLoopback9090()
    {
        var options = Bind([]);

        Assert.Equal("http://127.0.0.1:9090", options.Admin.Urls);
        Assert.Equal([9090], new ManagementListener(options.Admin.Urls).Ports);
    }

    [Fact]
    public void Urls_Empty_TurnTheListenerOff()
    {
        var options = Bind(new() { ["ModelRouting:Admin:Urls"] = "" });

        var listener = new ManagementListener(options.Admin.Urls);

        Assert.False(listener.IsEnabled);
        Assert.False(listener.IsManagementPort(9090));
    }

    [Theory]
    [InlineData("http://127.0.0.1:9191", new[] { 9191 })]
    [InlineData("http://*:9191; http://[::1]:9292", new[] { 9191, 9292 })]
    [InlineData("http://+:9191/", new[] { 9191 })]
    [InlineData("http://localhost", new[] { 80 })]
    public void Parse_ValidUrls_ReadsPorts(string urls, int[] ports) =>
        Assert.Equal(ports, ManagementListener.Parse(urls).Select(u => u.Port));

    [Theory]
    [InlineData("http://127.0.0.1:0", "port 0")]
    [InlineData("http://unix:/tmp/admin.sock", "not a TCP address")]
    public void Parse_UnusableUrl_RefusedNamingIt(string urls, string reason)
    {
        var e = Assert.Throws<ModelRoutingConfigurationException>(() => ManagementListener.Parse(urls));

        Assert.Contains(urls, e.Message);
        Assert.Contains(reason, e.Message);
        Assert.Contains("ModelRouting:Admin:Urls", e.Message);
    }

    private static ModelRoutingOptions Bind(Dictionary<string, string?> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build().GetSection("ModelRouting").Get<ModelRoutingOptions>() ?? new ModelRoutingOptions();
}
