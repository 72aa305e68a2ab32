package zegotest

// templates are the sample callbacks the tests sign, by name, with {{timestamp}},
// {{nonce}} and {{signature}} where the signed values go. They are Go strings, not
// embedded files, so that the tests that use them also run through Yaegi, which has no
// go:embed. mix_start.json is ZEGO's documented stream-mixing-started example, as the
// page spaces it; the others are the tests' own, shaped as ZEGO's.
var templates = map[string]string{
	"ai_agent.json": `{"AppId":1234567890,"AgentInstanceId":"1912124734317838336","Event":"AgentSpeakAction","Nonce":"{{nonce}}","Timestamp":{{timestamp}},"Signature":"{{signature}}","RoomID":"room-7","Sequence":1912124734317838339,"Data":{"Action":"SPEAK_BEGIN","RoundId":12}}
`,
	"mix_start.json": `{
"appid": "111111",
"channel_id": "2222",
"event": "mix_start",
"hdl_url": "http://hdl.wsdemo.zego.im/zegodemo/aaa.flv",
"hdl_urls": [
"http://hdl.wsdemo.zego.im/zegodemo/aaa.flv",
"http://testplay.aliyun.zego.im/livestream/aaa.flv"
],
"hls_url": "http://hls.wsdemo.zego.im/zegodemo/aaa/playlist.m3u8",
"hls_urls": [
"http://hls.wsdemo.zego.im/zegodemo/aaa/playlist.m3u8",
"http://testplay.aliyun.zego.im/livestream/aaa.m3u8"
],
"mix_stream_alias": "aaa",
"mix_url": "rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa",
"nonce": "{{nonce}}",
"publish_id": "abc",
"rtmp_url": "rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa",
"rtmp_urls": [
"rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa",
"rtmp://testplay.aliyun.zego.im/livestream/aaa"
],
"seq": "123",
"signature": "{{signature}}",
"stream_alias": "aaa",
"task_id": "111111:1111",
"timestamp": "{{timestamp}}"
}
`,
	"mix_stop.json": `{"appid":"111111","channel_id":"2222","event":"mix_stop","mix_stream_alias":"aaa","mix_url":"rtmp://rtmp.wsdemo.zego.im/zegodemo/aaa","nonce":"{{nonce}}","publish_id":"abc","seq":"124","signature":"{{signature}}","task_id":"111111:1111","timestamp":"{{timestamp}}"}
`,
	"room_create.json": `{"appid":111111,"event":"room_create","room_id":"room-42","room_seq":"8472921","id_name":"user-1","user_account":"user-1","nonce":"{{nonce}}","timestamp":{{timestamp}},"signature":"{{signature}}"}
`,
	"stream_create.form": `appid=111111&event=stream_create&channel_id=2222&stream_alias=aaa&stream_id=aaa&publish_id=abc&publish_name=Alice+%26+Bob&create_time=1689834748&nonce={{nonce}}&timestamp={{timestamp}}&signature={{signature}}`,
}
