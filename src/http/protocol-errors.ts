import { type Server, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERROR_STATUS, type ErrorCode } from '../errors';

/**
 * Node answers what it cannot hand to Express itself, with an empty body: a request that is not
 * valid HTTP (400), a client too slow to send it (408), headers over Node's limit (431), an
 * `Expect` it does not know (417). These listeners give those answers the API's JSON error, so a
 * client that parses every error body finds one there too.
 */
export function answerProtocolErrorsAsJson(server: Server): void {
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    // Node's own rule: answer only while nothing of a response went out on this connection.
    const answering = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })
      ._httpMessage;
    if (error.code === 'ECONNRESET' || !socket.writable || answering?.headersSent) {
      socket.destroy();
      return;
    }
    const [code, message] = answerFor(error.code);
    socket.end(rawAnswer(code, message));
  });
  server.on('checkExpectation', (req, res) => {
    const code: ErrorCode = 'expectation_failed';
    const message = `Expect: ${String(req.headers.expect).slice(0, 40)} is not supported; send the body without it, or with Expect: 100-continue.`;
    const body = JSON.stringify({ error: { code, message } });
    // The body the client held back is never read, so the connection cannot carry another request.
    res
      .writeHead(ERROR_STATUS[code], {
        'Content-Type': 'application/json; charset=utf-8',
        'Content-Length': Buffer.byteLength(body),
        Connection: 'close',
      })
      .end(body);
  });
}

function answerFor(nodeCode: string | undefined): [ErrorCode, string] {
  switch (nodeCode) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['request_timeout', 'The request did not arrive in time; the connection is closed.'];
    case 'HPE_HEADER_OVERFLOW':
      return ['headers_too_large', "The request's headers and URL are too large."];
    default:
      return ['invalid_request', 'The request is not valid HTTP/1.1.'];
  }
}

/** A whole response written to the socket: the parser gave up, so there is no response object. */
function rawAnswer(code: ErrorCode, message: string): string {
  const status = ERROR_STATUS[code];
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}
