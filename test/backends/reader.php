<?php
// A PHP backend behind the middleware, for the end-to-end tests: it reads each request
// the ways PHP backends do, and answers what it read as JSON, for the test to hold
// against the X-Zego-* headers the middleware wrote.
//
// Run with PHP's built-in server: php -S 127.0.0.1:<port> reader.php, with the test
// secret in ZEGO_CALLBACK_SECRET.

// ZEGO's documented verification ("authenticating server-to-server callbacks"), as
// published for $_POST, applied here to whichever reading of the body a backend uses,
// with the product's own field names (PascalCase in AI Agent, ASR, moderation and the
// other products that use them).
function zegoCheckSignature($params, $secret) {
    if (isset($params["Signature"], $params["Timestamp"], $params["Nonce"])) {
        $params = array("signature" => $params["Signature"], "timestamp" => $params["Timestamp"], "nonce" => $params["Nonce"]);
    } elseif (isset($params["Signature"], $params["Timestamp"], $params["SignatureNonce"])) {
        // Mini-game's callbacks name the nonce SignatureNonce.
        $params = array("signature" => $params["Signature"], "timestamp" => $params["Timestamp"], "nonce" => $params["SignatureNonce"]);
    }
    if (!isset($params["signature"], $params["timestamp"], $params["nonce"])) {
        return null;
    }
    $signature = $params["signature"];
    $timestamp = $params["timestamp"];
    $nonce = $params["nonce"];
    if (!is_string($signature) || is_array($timestamp) || is_array($nonce)) {
        return false;
    }
    $tmpArr = array($secret, (string)$timestamp, (string)$nonce);
    sort($tmpArr, SORT_STRING);
    $tmpStr = implode($tmpArr);
    $tmpStr = sha1($tmpStr);
    return $tmpStr == $signature;
}

$secret = getenv("ZEGO_CALLBACK_SECRET");
$raw = file_get_contents("php://input");

// The headers as CGI gives them to PHP: HTTP_X_ZEGO_EVENT and the like.
$headers = array();
foreach ($_SERVER as $name => $value) {
    if (strncmp($name, "HTTP_X_ZEGO", 11) == 0) {
        $headers[$name] = $value;
    }
}

$readings = array();
// $_POST: what PHP makes of a form body (only with a form's Content-Type).
$readings["post"] = count($_POST) > 0 ? $_POST : null;
// json_decode of the body, big integers kept as strings as a careful backend would.
$json = json_decode($raw, true, 512, JSON_BIGINT_AS_STRING);
$readings["json"] = is_array($json) ? $json : null;
// json_decode of the body URL-decoded first: ZEGO's form mode with a JSON document.
$urljson = json_decode(urldecode($raw), true, 512, JSON_BIGINT_AS_STRING);
$readings["urljson"] = is_array($urljson) ? $urljson : null;

$checks = array();
foreach ($readings as $name => $reading) {
    $checks[$name] = is_array($reading) ? zegoCheckSignature($reading, $secret) : null;
}

header("Content-Type: application/json");
echo json_encode(array("backend" => "php", "headers" => $headers, "readings" => $readings, "checks" => $checks),
    JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_PRESERVE_ZERO_FRACTION);
