using Microsoft.AspNetCore.Http;

namespace ProxyHost;

/// <summary>
/// Makes the host listen on the management listener (<c>ModelRouting:Admin:Urls</c>, default
/// <c>http://127.0.0.1:9090</c>; empty turns it off) as well as on the public URLs (<c>--urls</c>).
/// </summary>
internal static class ManagementListenerUrls
{
    private const string DefaultPublicUrls = "http://localhost:5000";
    private const StringSplitOptions Split = StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries;

    /// <summary>Adds the management URLs to Kestrel's URLs.</summary>
    /// <exception cref="InvalidOperationException">
    /// A management URL has port 0 or is not TCP, or uses a public URL's port; the message names both.
    /// </exception>
    public static void Add(WebApplicationBuilder builder)
    {
        var configured = builder.Configuration["ModelRouting:Admin:Urls"] ?? ModelRouting.Configuration.AdminOptions.DefaultUrls;
        if (string.IsNullOrWhiteSpace(configured))
        {
            return;
        }

        var management = Parse(configured);
        var publicUrls = (builder.Configuration[WebHostDefaults.ServerUrlsKey] ?? DefaultPublicUrls).Split(';', Split);
        foreach (var url in publicUrls)
        {
            var port = BindingAddress.Parse(url) is { IsUnixPipe: false, IsNamedPipe: false, Port: > 0 } address ? address.Port : 0;
            if (port > 0 && management.FirstOrDefault(m => m.Port == port) is { Url: not null } clash)
            {
                throw new InvalidOperationException(
                    $"The management listener '{clash.Url}' (ModelRouting:Admin:Urls) uses port {port}, which the public listener '{url}' (--urls) uses too: "
                    + "give the management listener a port of its own, or set ModelRouting:Admin:Urls to an empty value to turn it off.");
            }
        }

        builder.WebHost.UseUrls([.. publicUrls, .. management.Select(m => m.Url)]);
    }

    private static List<(string Url, int Port)> Parse(string urls)
    {
        var result = new List<(string, int)>();
        foreach (var url in urls.Split(';', Split))
        {
            BindingAddress address;
            try
            {
                address = BindingAddress.Parse(url);
            }
            catch (FormatException e)
            {
                throw new InvalidOperationException($"ModelRouting:Admin:Urls: '{url}' is not a URL ({e.Message}).", e);
            }

            if (address.IsUnixPipe || address.IsNamedPipe || address.Port == 0)
            {
                throw new InvalidOperationException(
                    $"ModelRouting:Admin:Urls: '{url}' needs a fixed TCP port (not 0): the management listener is told apart from the public one by its port.");
            }

            result.Add((url, address.Port));
        }

        return result;
    }
}
