// Command sipedge-users adds or replaces a user in a users file (the file
// store of [auth]), computing the HA1 values from the password so that the
// password itself is never stored:
//
//	sipedge-users -f users.txt -realm example.com -user alice            # prompts
//	sipedge-users -f users.txt -realm example.com -user alice -password s3cret
//	echo s3cret | sipedge-users -f users.txt -realm example.com -user alice
//	sipedge-users -f users.txt -realm example.com -user alice -delete
//
// Each line is "username realm ha1md5 ha1sha256"; comments and other users
// are kept as they are, and the file is replaced atomically. Then send
// SIGHUP to the appliance to reload it. With -redis it prints the HSET
// command for the redis store instead of writing a file.
//
// It may import sipcore and pipeline/stages/auth; nothing may import it.
package main
