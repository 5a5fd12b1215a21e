# robocop: off=line-too-long
*** Settings ***
Documentation       Bad input on the REST side (P16): unknown paths, wrong methods, bodies over the
...                 request limit, bodies that are not JSON or not an object, and bodies not declared
...                 as JSON. Each is answered with its status of protocol §6 and exactly the error
...                 body ``{code, message, retryable}``; nothing is stored (neither the suite's
...                 fixtures change nor any row carries the request's fresh id ``$NEW``); the server
...                 keeps serving the bystander. ``$ARENA`` is a conversation eve belongs to,
...                 ``$USER_OSCAR`` a user who is not in it.

Resource            ../../resources/hostile.resource

Test Tags           P16    spec:6-a
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace

Test Template       A REST Request Is Refused Without A Trace


*** Test Cases ***                              CALLER       REQUEST                                                  CONTENT TYPE                         BODY                                                                              OUTCOME
Unknown Path                                    admin        GET /v1/no/such/path                                     NONE                                 ${EMPTY}                                                                          404 not_found
    [Tags]    spec:8.1-b
Unknown Path With A Body                        admin        POST /v1/userz                                           application/json                     {"user_id":"$NEW"}                                                                404 not_found
    [Tags]    spec:8.1-b
Unknown Path Below A Known One                  admin        POST /v1/users/$USER_EVE/devices/extra                   application/json                     {"device_id":"$NEW"}                                                              404 not_found
    [Tags]    spec:8.1-b
Unknown API Version                             eve-phone    POST /v2/conversations/$ARENA/messages                   application/json                     {"client_msg_id":"$NEW","body":1}                                                 404 not_found
    [Tags]    spec:8.1-b
Unknown Path Without A Token                    none         GET /v1/admin                                            NONE                                 ${EMPTY}                                                                          404 not_found
    [Tags]    spec:8.1-b
PUT On The Users Collection                     admin        PUT /v1/users                                            application/json                     {"user_id":"$NEW"}                                                                405 method_not_allowed
    [Tags]    spec:8.1-b
GET On The Users Collection                     admin        GET /v1/users                                            NONE                                 ${EMPTY}                                                                          405 method_not_allowed
    [Tags]    spec:8.1-b
DELETE On The Messages Of A Conversation        eve-phone    DELETE /v1/conversations/$ARENA/messages                 NONE                                 ${EMPTY}                                                                          405 method_not_allowed
    [Tags]    spec:8.1-b
PUT On A Message                                eve-phone    PUT /v1/conversations/$ARENA/messages/1                  application/json                     {"expected_version":1,"body":"$NEW"}                                              405 method_not_allowed
    [Tags]    spec:8.1-b
POST On Health                                  none         POST /health                                             application/json                     {}                                                                                405 method_not_allowed
    [Tags]    spec:8.1-b
A User Over The Request Limit                   admin        POST /v1/users                                           application/json                     {"user_id":"$NEW","display_name":"$OVER_LIMIT"}                                   413 too_large
    [Tags]    spec:8.1-b
A Message Over The Request Limit                eve-phone    POST /v1/conversations/$ARENA/messages                   application/json                     {"client_msg_id":"$NEW","body":"$OVER_LIMIT"}                                     413 too_large
    [Tags]    spec:8.1-b
A Message Body Over The Body Limit              eve-phone    POST /v1/conversations/$ARENA/messages                   application/json                     {"client_msg_id":"$NEW","body":"$BIG"}                                            413 too_large
    [Tags]    spec:8.1-c    spec:4.2-c
Truncated JSON                                  admin        POST /v1/users                                           application/json                     {"user_id":"$NEW"                                                                 400 invalid_json
    [Tags]    spec:8.1-b
JSON With Trailing Text                         admin        POST /v1/users                                           application/json                     {"user_id":"$NEW"} and more                                                       400 invalid_json
    [Tags]    spec:8.1-b
Single-Quoted JSON                              eve-phone    POST /v1/conversations/$ARENA/messages                   application/json                     {'client_msg_id':'$NEW','body':1}                                                 400 invalid_json
    [Tags]    spec:8.1-b
A JSON Array                                    admin        POST /v1/conversations                                   application/json                     \[{"conversation_id":"$NEW","members":["$USER_EVE"]}]                             400 invalid_json
    [Tags]    spec:8.1-b
JSON Null                                       eve-phone    POST /v1/conversations/$ARENA/messages                   application/json                     null                                                                              400 invalid_json
    [Tags]    spec:8.1-b
Form Fields Declared As JSON                    admin        POST /v1/conversations/$ARENA/members                    application/json                     user_id=$USER_OSCAR                                                               400 invalid_json
    [Tags]    spec:8.1-b
An Empty Body Declared As JSON                  admin        POST /v1/users                                           application/json                     ${EMPTY}                                                                          400 invalid_json
    [Tags]    spec:8.1-b
JSON Nested 10,000 Deep                         admin        POST /v1/users                                           application/json                     {"user_id":"$NEW","display_name":$DEEP}                                           400 bad_request
    [Tags]    spec:6-c
A Message Body With NaN                         eve-phone    POST /v1/conversations/$ARENA/messages                   application/json                     {"client_msg_id":"$NEW","body":NaN}                                               400 bad_request
    [Tags]    spec:6-c
JSON Declared As Plain Text                     admin        POST /v1/users                                           text/plain                           {"user_id":"$NEW"}                                                                415 unsupported_media_type
    [Tags]    spec:8.1-a
A Message Without A Content Type                eve-phone    POST /v1/conversations/$ARENA/messages                   NONE                                 {"client_msg_id":"$NEW","body":1}                                                 415 unsupported_media_type
    [Tags]    spec:8.1-a
A Member Sent As A Form                         admin        POST /v1/conversations/$ARENA/members                    application/x-www-form-urlencoded    user_id=$USER_OSCAR                                                               415 unsupported_media_type
    [Tags]    spec:8.1-a
A JSON Look-Alike Media Type                    admin        POST /v1/conversations                                   application/json-patch+json          {"conversation_id":"$NEW","members":["$USER_EVE"]}                                415 unsupported_media_type
    [Tags]    spec:8.1-a
No Content Type And No Body                     admin        POST /v1/users                                           NONE                                 ${EMPTY}                                                                          415 unsupported_media_type
    [Tags]    spec:8.1-a
An Edit Sent As XML                             eve-phone    PATCH /v1/conversations/$ARENA/messages/1                application/xml                      <edit version="1">$NEW</edit>                                                     415 unsupported_media_type
    [Tags]    spec:8.1-a


*** Keywords ***
A REST Request Is Refused Without A Trace
    [Documentation]    ``request`` (``<method> <path>``) is answered with ``outcome``
    ...    (``<status> <code>``) in the documented error shape; its fresh id is stored nowhere
    ...    and the suite's fixtures are unchanged.
    [Arguments]    ${caller}    ${request}    ${content_type}    ${body}    ${outcome}
    ${method}    ${path}    Split String    ${request}    max_split=1
    ${reply}    Raw REST Request    ${caller}    ${method}    ${path}    ${body}    ${content_type}
    ${status}    ${code}    Split String    ${outcome}    max_split=1
    REST Error Should Be    ${reply}    ${status}    ${code}
    Fresh Id Should Not Be Stored    ${reply}
    Nothing Was Stored
