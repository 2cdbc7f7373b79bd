using System.Collections.Frozen;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using ModelRouting.Configuration;

namespace ModelRouting.Admin;

/// <summary>
/// The management listener (SPEC §12): the local ports of <see cref="AdminOptions.Urls"/>, where the admin
/// API (and any endpoint marked with <c>RequireManagementListener()</c>) answers, and the proxy does not.
/// Read once at start-up: the server binds its addresses once, so a reload cannot move the listener.
/// </summary>
/// <remarks>
/// A request is told apart by <see cref="ConnectionInfo.LocalPort"/>, the port the connection was accepted
/// on, never by the Host header (a client chooses that). Thread-safe: immutable after construction.
/// </remarks>
internal sealed class ManagementListener
{
    public ManagementListener(IOptions<ModelRoutingOptions> options)
        : this(options.Value.Admin.Urls)
    {
    }

    internal ManagementListener(string? urls)
    {
        Urls = urls?.Trim() ?? "";
        Ports = Parse(Urls).Select(u => u.Port).ToFrozenSet();
    }

    /// <summary>Gets the configured URLs (<c>;</c>-separated); empty when the listener is off.</summary>
    public string Urls { get; }

    /// <summary>Gets the management listener's ports; empty when it is off.</summary>
    public IReadOnlySet<int> Ports { get; }

    /// <summary>Gets whether the management listener is on.</summary>
    public bool IsEnabled => Ports.Count > 0;

    /// <summary>Gets whether <paramref name="localPort"/> is one of the management listener's ports.</summary>
    public bool IsManagementPort(int localPort) => Ports.Contains(localPort);

    /// <summary>
    /// Gets whether the request arrived on the management listener. The proxy pipeline can call this to keep
    /// management-port requests away from backends.
    /// </summary>
    public bool IsManagementRequest(HttpContext context) => IsManagementPort(context.Connection.LocalPort);

    /// <summary>
    /// Splits and checks management URLs: each must be an http(s) URL with an explicit TCP port other than 0
    /// (a port chosen at bind time could not be told apart from the public listener's).
    /// </summary>
    /// <exception cref="ModelRoutingConfigurationException">A URL is not usable; the message names it.</exception>
    public static IReadOnlyList<(string Url, int Port)> Parse(string? urls)
    {
        var result = new List<(string, int)>();
        var errors = new List<string>();
        foreach (var url in (urls ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            BindingAddress address;
            try
            {
                address = BindingAddress.Parse(url);
            }
            catch (FormatException e)
            {
                errors.Add($"ModelRouting:Admin:Urls: '{url}' is not a URL ({e.Message}).");
                continue;
            }

            if (address.IsUnixPipe || address.IsNamedPipe)
            {
                errors.Add($"ModelRouting:Admin:Urls: '{url}' is not a TCP address; the management listener is told apart by its port.");
            }
            else if (address.Port == 0)
            {
                errors.Add($"ModelRouting:Admin:Urls: '{url}' has port 0; give the management listener a fixed port (a port chosen at bind time cannot be told apart from the public listener's).");
            }
            else
            {
                result.Add((url, address.Port));
            }
        }

        return errors.Count > 0 ? throw new ModelRoutingConfigurationException(errors) : result;
    }
}
