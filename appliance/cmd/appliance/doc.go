// Command appliance is the sipedge daemon.
package main
