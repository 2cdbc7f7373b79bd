using System.Globalization;
using System.Net;
using Microsoft.Net.Http.Headers;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Backends;

/// <summary>
/// Sends the gateway's own requests (discovery, adapter loading; later metrics scraping and tokenize) to one
/// destination of a cluster, with that cluster's backend credential (<c>ModelRouting:Backends:&lt;cluster&gt;:ApiKey</c>
/// as <c>Authorization: Bearer …</c>). It goes through the cluster's own YARP HTTP client, so the cluster's
/// <c>HttpClient</c> settings (TLS, client certificates, web proxy, connection limits) and HTTP version apply and
/// connections are pooled with proxied traffic. Every call has a deadline covering the whole response, which is
/// buffered up to <see cref="MaxResponseBytes"/>.
/// </summary>
/// <remarks>Thread-safe and stateless apart from the credential lookup.</remarks>
internal sealed class BackendClient(BackendCredentials credentials)
{
    /// <summary>The largest response body read: 16 MiB.</summary>
    public const long MaxResponseBytes = 16 * 1024 * 1024;

    /// <summary>
    /// Sends <paramref name="method"/> <paramref name="path"/> (relative to the destination's address) with
    /// <paramref name="content"/> and returns the response with its body buffered; the caller disposes it.
    /// </summary>
    /// <exception cref="TimeoutException">No complete response within <paramref name="timeout"/>.</exception>
    /// <exception cref="HttpRequestException">The destination could not be reached or the body was too large.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<HttpResponseMessage> SendAsync(
        ClusterState cluster, DestinationState destination, HttpMethod method, string path, HttpContent? content, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var model = cluster.Model;
        var address = destination.Model.Config.Address;
        using var request = new HttpRequestMessage(method, new Uri(new Uri(address.EndsWith('/') ? address : address + "/"), path))
        {
            Content = content,
            Version = model.Config.HttpRequest?.Version ?? HttpVersion.Version20,
            VersionPolicy = model.Config.HttpRequest?.VersionPolicy ?? HttpVersionPolicy.RequestVersionOrLower,
        };
        if (credentials.TryGetAuthorization(cluster.ClusterId, out var authorization))
        {
            request.Headers.TryAddWithoutValidation(HeaderNames.Authorization, authorization);
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        HttpResponseMessage? response = null;
        try
        {
            response = await model.HttpClient.SendAsync(request, deadline.Token);
            await response.Content.LoadIntoBufferAsync(MaxResponseBytes, deadline.Token);
            return response;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            response?.Dispose();
            throw new TimeoutException(string.Create(CultureInfo.InvariantCulture, $"no complete answer within {timeout.TotalSeconds:0.###} s"));
        }
        catch
        {
            response?.Dispose();
            throw;
        }
    }
}
